//! Event ids increase in commit order across nodes: a reader that resumes "after the last id it
//! saw", over and over while two nodes write concurrently, never skips an event. With ids from a
//! plain sequence this fails: a transaction that took a smaller id commits after one that took
//! a larger id, which the reader has already moved past.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use watercooler::domain::NewMessage;
use watercooler::store::{self, settings_with_buffer, Backend, Store};
use watercooler::topic::TopicSet;

use crate::pg::Cluster;

const WRITERS_PER_NODE: usize = 24;
const APPENDS_PER_WRITER: usize = 40;

fn everything() -> TopicSet {
    TopicSet::parse(["rooms", "rooms/*"]).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_resuming_continually_never_skips_an_event() {
    let url = Cluster::shared().fresh_database();
    let mut hubs = Vec::new();
    let mut nodes: Vec<Arc<dyn Store>> = Vec::new();
    for _ in 0..2 {
        let node = store::open(
            Backend::Postgres(url.clone()),
            settings_with_buffer(1 << 16),
        )
        .await
        .unwrap();
        hubs.push(node.nudge.hub().clone());
        nodes.push(node.store);
    }
    let mut subscriptions: Vec<_> = hubs
        .iter()
        .map(|hub| hub.subscribe(Arc::new(everything())))
        .collect();
    let start = nodes[0].log_range().await.unwrap().head;

    let writing = Arc::new(AtomicBool::new(true));
    let readers: Vec<_> = (0..2)
        .map(|r| {
            let (nodes, writing) = (nodes.clone(), writing.clone());
            tokio::spawn(async move {
                let (mut last, mut seen, mut reads) = (start, BTreeSet::new(), 0usize);
                // Alternate nodes: a resume may land on either.
                while writing.load(Ordering::Acquire) {
                    let node = &nodes[(r + reads) % 2];
                    for event in node.events_after(last, &everything()).await.unwrap() {
                        assert!(event.id > last, "ids after {last} only");
                        last = event.id;
                        seen.insert(event.id);
                    }
                    reads += 1;
                }
                (seen, reads)
            })
        })
        .collect();

    let writers: Vec<_> = (0..2 * WRITERS_PER_NODE)
        .map(|w| {
            let node = nodes[w % 2].clone();
            tokio::spawn(async move {
                for i in 0..APPENDS_PER_WRITER {
                    // New rooms now and then, so that some writes log two events.
                    let message = NewMessage {
                        room: format!("w{w}-{}", i / 10),
                        author: "w".into(),
                        text: format!("{w}-{i}"),
                    };
                    node.append_message(message, None).await.unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    writing.store(false, Ordering::Release);

    let log: Vec<i64> = nodes[1]
        .events_after(start, &everything())
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert!(log.len() >= 2 * WRITERS_PER_NODE * APPENDS_PER_WRITER);
    for reader in readers {
        let (seen, reads) = reader.await.unwrap();
        let skipped: Vec<_> = log.iter().filter(|id| !seen.contains(id)).collect();
        // Events committed after the reader's last read are not skipped, just not read yet.
        let last_seen = seen.last().copied().unwrap_or(start);
        let skipped: Vec<_> = skipped.into_iter().filter(|&&id| id < last_seen).collect();
        assert!(
            skipped.is_empty(),
            "after {reads} reads, skipped {skipped:?}"
        );
        assert!(
            reads > 10,
            "the reader resumed many times while writes went on: {reads}"
        );
    }

    // Each node's follower published every event once, in id order.
    for (n, subscription) in subscriptions.iter_mut().enumerate() {
        let mut published = Vec::with_capacity(log.len());
        // One deadline for the whole log, not one per event.
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        while published.len() < log.len() {
            let event = tokio::time::timeout_at(deadline, subscription.recv())
                .await
                .expect("every event is published within 30 s")
                .expect("subscribed");
            published.push(event.id.unwrap());
        }
        assert_eq!(published, log, "node {n} published the log in order");
    }
}
