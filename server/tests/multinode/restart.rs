//! PostgreSQL stops and starts again while two nodes serve writers and subscribers: writes
//! during the outage are refused quickly with 503, the streams stay open, and afterwards every
//! acknowledged write reaches every subscriber.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::node::Node;
use crate::pg::{Cluster, Options};
use crate::wait::wait_until;

/// How fast a refused write must be answered.
const REFUSAL_LIMIT: Duration = Duration::from_secs(2);

#[derive(Default)]
struct Tally {
    acked: Mutex<BTreeSet<i64>>,
    acked_count: [AtomicUsize; 2],
    refused: [AtomicUsize; 2],
    slowest_refusal: Mutex<Duration>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restart_loses_no_acknowledged_write() {
    // A cluster of its own: stopping the shared one would break the other tests.
    let cluster = Cluster::start(Options { fsync: false });
    let url = cluster.fresh_database();
    let nodes = Arc::new([Node::start(&url), Node::start(&url)]);

    let mut subscribers = Vec::new();
    for n in [0, 1, 0, 1] {
        let mut stream = nodes[n].subscribe("topic=rooms/*").await;
        let seen = Arc::new(Mutex::new(BTreeSet::new()));
        let stopped = Arc::new(Mutex::new(None::<String>));
        let (into, why) = (seen.clone(), stopped.clone());
        let task = tokio::spawn(async move {
            // Each wait is bounded in all (the outage may hold events back a while); the task
            // is aborted once every write was seen.
            while let Some(event) = stream.next_event_within(Duration::from_secs(120)).await {
                if event.event != "changed" {
                    *why.lock().unwrap() = Some(format!("the stream sent {event:?}"));
                    return;
                }
                into.lock().unwrap().insert(event.id());
            }
            *why.lock().unwrap() = Some("the stream ended".into());
        });
        subscribers.push((seen, stopped, task));
    }

    let tally = Arc::new(Tally::default());
    let writing = Arc::new(AtomicBool::new(true));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (nodes, tally, writing) = (nodes.clone(), tally.clone(), writing.clone());
            tokio::spawn(async move {
                let n = w % 2;
                let mut i = 0;
                while writing.load(Ordering::Acquire) {
                    let key = format!("w{w}-{i}");
                    let started = Instant::now();
                    let response = nodes[n].post(&format!("room{w}"), &key, Some(&key)).await;
                    match response.status().as_u16() {
                        201 => {
                            let body: serde_json::Value = response.json().await.unwrap();
                            let id = body["event_id"].as_i64().unwrap();
                            tally.acked.lock().unwrap().insert(id);
                            tally.acked_count[n].fetch_add(1, Ordering::AcqRel);
                            i += 1;
                        }
                        503 => {
                            assert!(response.headers().contains_key("retry-after"));
                            let took = started.elapsed();
                            let mut slowest = tally.slowest_refusal.lock().unwrap();
                            *slowest = (*slowest).max(took);
                            drop(slowest);
                            tally.refused[n].fetch_add(1, Ordering::AcqRel);
                            // Retried with the same key, as a client would after Retry-After.
                        }
                        other => panic!("unexpected status {other}"),
                    }
                    // Pacing, so the outage sees a bounded number of requests.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            })
        })
        .collect();

    let acked = |n: usize| tally.acked_count[n].load(Ordering::Acquire);
    let refused = |n: usize| tally.refused[n].load(Ordering::Acquire);
    wait_until(Duration::from_secs(30), "writes before the outage", || {
        std::future::ready(acked(0) >= 10 && acked(1) >= 10)
    })
    .await;

    tokio::task::block_in_place(|| cluster.stop_server());
    let ready = nodes[0].client.get(nodes[0].url("/readyz")).send().await;
    assert_eq!(
        ready.unwrap().status(),
        503,
        "not ready without the database"
    );
    wait_until(Duration::from_secs(10), "503s during the outage", || {
        std::future::ready(refused(0) >= 5 && refused(1) >= 5)
    })
    .await;
    let before_restart = [acked(0), acked(1)];
    tokio::task::block_in_place(|| cluster.start_server());

    wait_until(Duration::from_secs(30), "writes after the restart", || {
        std::future::ready(acked(0) >= before_restart[0] + 10 && acked(1) >= before_restart[1] + 10)
    })
    .await;
    writing.store(false, Ordering::Release);
    for writer in writers {
        writer.await.unwrap();
    }

    let acked = tally.acked.lock().unwrap().clone();
    for (seen, stopped, _) in &subscribers {
        wait_until(Duration::from_secs(15), "every write delivered", || {
            if let Some(why) = stopped.lock().unwrap().as_ref() {
                panic!("{why}");
            }
            std::future::ready(seen.lock().unwrap().is_superset(&acked))
        })
        .await;
    }
    for (_, _, task) in subscribers {
        task.abort();
    }
    let slowest = *tally.slowest_refusal.lock().unwrap();
    assert!(
        slowest <= REFUSAL_LIMIT,
        "a refused write took {slowest:?} to answer"
    );
}
