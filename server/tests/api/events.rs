//! The event stream, read the way EventSource reads it.

use std::collections::HashMap;
use std::time::Duration;

use crate::helpers::{spawn_app, spawn_app_with, StreamPath};
use crate::sse_client::{Item, SseClient};
use crate::wait::wait_until;

over_both_paths! {
    #[tokio::test] the_stream_has_the_contract_headers_and_sends_retry_with_jitter;
    #[tokio::test] a_post_produces_exactly_one_light_changed_event;
    #[tokio::test] prefix_topics_match_below_the_prefix_only;
    #[tokio::test] resuming_replays_what_was_missed_coalesced_per_url_then_goes_live;
    #[tokio::test] the_last_event_id_query_parameter_resumes_too;
    #[tokio::test] an_unusable_last_event_id_gets_a_reset_carrying_the_head;
    #[tokio::test] an_id_older_than_the_retained_log_gets_a_reset;
    #[tokio::test] a_heartbeat_comment_keeps_an_idle_stream_alive;
    #[tokio::test] a_closed_connection_is_forgotten_at_once;
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)] resuming_under_concurrent_writes_has_no_gap_and_no_duplicate;
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)] a_subscriber_that_never_reads_is_reset_and_the_others_are_not_slowed;
}

async fn the_stream_has_the_contract_headers_and_sends_retry_with_jitter(path: StreamPath) {
    let app = spawn_app().await.streams_over(path);
    let mut stream = app.subscribe("topic=rooms/general", None).await;
    assert_eq!(stream.headers["content-type"], "text/event-stream");
    assert_eq!(stream.headers["cache-control"], "no-store");
    assert_eq!(stream.headers["x-accel-buffering"], "no");
    match stream.next_item().await {
        Some(Item::Retry(ms)) => assert!((1_000..=5_000).contains(&ms), "retry {ms}"),
        other => panic!("expected retry first, got {other:?}"),
    }
}

async fn a_post_produces_exactly_one_light_changed_event(path: StreamPath) {
    let app = spawn_app().await.streams_over(path);
    let mut stream = app
        .subscribe("topic=rooms/general&topic=rooms/sync", None)
        .await;
    let posted = app.post_ok("general", "hello").await;
    // A later write on another subscribed topic marks the end: events arrive in commit order,
    // so anything the first POST caused must come before it.
    app.post_ok("sync", "marker").await;
    let events = stream
        .events_until(|e| e.json()["topic"] == "rooms/sync")
        .await;
    let general: Vec<_> = events
        .iter()
        .filter(|e| e.json()["topic"] == "rooms/general")
        .collect();
    assert_eq!(general.len(), 1, "events: {events:?}");
    let event = general[0];
    assert_eq!(event.event, "changed");
    assert_eq!(event.id(), posted["event_id"].as_i64().unwrap());
    let data = event.json();
    assert_eq!(data["url"], "/api/rooms/general/recent");
    assert_eq!(data["etag"], format!("\"{}\"", posted["event_id"]));
    assert!(
        data.get("text").is_none(),
        "a nudge carries no content: {data}"
    );
}

async fn prefix_topics_match_below_the_prefix_only(path: StreamPath) {
    let app = spawn_app().await.streams_over(path);
    let mut stream = app.subscribe("topic=rooms/*", None).await;
    // Creating a room logs an event on `rooms`, which `rooms/*` must not match.
    let created = app
        .client
        .put(app.url("/api/rooms/new"))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let posted = app.post_ok("new", "x").await;
    let event = stream.next_event().await.unwrap();
    assert_eq!(event.id(), posted["event_id"].as_i64().unwrap());
    assert_eq!(event.json()["topic"], "rooms/new");
}

async fn resuming_replays_what_was_missed_coalesced_per_url_then_goes_live(path: StreamPath) {
    let app = spawn_app().await.streams_over(path);
    let start = app.post_ok("general", "before").await["event_id"]
        .as_i64()
        .unwrap();
    let mut newest = HashMap::new();
    for (room, text) in [
        ("general", "a"),
        ("lobby", "b"),
        ("general", "c"),
        ("other", "d"),
        ("lobby", "e"),
    ] {
        let id = app.post_ok(room, text).await["event_id"].as_i64().unwrap();
        newest.insert(format!("/api/rooms/{room}/recent"), id);
    }
    let mut stream = app
        .subscribe(
            "topic=rooms/general&topic=rooms/lobby",
            Some(&start.to_string()),
        )
        .await;
    let replay = [
        stream.next_event().await.unwrap(),
        stream.next_event().await.unwrap(),
    ];
    let got: Vec<_> = replay
        .iter()
        .map(|e| (e.json()["url"].as_str().unwrap().to_owned(), e.id()))
        .collect();
    let mut want: Vec<_> = ["/api/rooms/general/recent", "/api/rooms/lobby/recent"]
        .iter()
        .map(|u| (u.to_string(), newest[*u]))
        .collect();
    want.sort_by_key(|(_, id)| *id);
    assert_eq!(got, want, "each URL once, at its newest id, in id order");

    let live = app.post_ok("general", "live").await["event_id"]
        .as_i64()
        .unwrap();
    let next = stream.next_event().await.unwrap();
    assert_eq!(
        next.id(),
        live,
        "live follows the replay with nothing in between"
    );
}

async fn the_last_event_id_query_parameter_resumes_too(path: StreamPath) {
    let app = spawn_app().await.streams_over(path);
    let start = app.post_ok("general", "one").await["event_id"]
        .as_i64()
        .unwrap();
    let missed = app.post_ok("general", "two").await["event_id"]
        .as_i64()
        .unwrap();
    let mut stream = app
        .subscribe(&format!("topic=rooms/general&lastEventId={start}"), None)
        .await;
    assert_eq!(stream.next_event().await.unwrap().id(), missed);
}

async fn an_unusable_last_event_id_gets_a_reset_carrying_the_head(path: StreamPath) {
    let app = spawn_app().await.streams_over(path);
    app.post_ok("general", "one").await;
    for bad in ["abc", "1000000"] {
        let head = app.hub.head();
        let mut stream = app.subscribe("topic=rooms/general", Some(bad)).await;
        let event = stream.next_event().await.unwrap();
        assert_eq!(event.event, "reset", "for Last-Event-ID {bad}");
        assert_eq!(event.id(), head);
        // After the reset the stream is live.
        let posted = app.post_ok("general", "after reset").await["event_id"]
            .as_i64()
            .unwrap();
        assert_eq!(stream.next_event().await.unwrap().id(), posted);
    }
}

async fn an_id_older_than_the_retained_log_gets_a_reset(path: StreamPath) {
    let app = spawn_app_with(|c| c.retain_events = 2)
        .await
        .streams_over(path);
    let old = app.post_ok("general", "old").await["event_id"]
        .as_i64()
        .unwrap();
    for i in 0..4 {
        app.post_ok("general", &format!("m{i}")).await;
    }
    let removed = app
        .store
        .prune(nudge::Retention {
            max_events: 2,
            max_age_secs: 3600,
        })
        .await
        .unwrap();
    assert!(removed > 0);
    let mut stream = app
        .subscribe("topic=rooms/general", Some(&(old - 1).to_string()))
        .await;
    let event = stream.next_event().await.unwrap();
    assert_eq!(event.event, "reset");
    assert_eq!(event.id(), app.hub.head());
}

async fn a_heartbeat_comment_keeps_an_idle_stream_alive(path: StreamPath) {
    let app = spawn_app_with(|c| c.heartbeat_secs = 1)
        .await
        .streams_over(path);
    let mut stream = app.subscribe("topic=rooms/general", None).await;
    loop {
        match stream.next_item().await.expect("open") {
            Item::Comment(c) => {
                assert_eq!(c, "keep-alive");
                break;
            }
            Item::Retry(_) => {}
            Item::Event(e) => panic!("no event expected: {e:?}"),
        }
    }
}

async fn a_closed_connection_is_forgotten_at_once(path: StreamPath) {
    let app = spawn_app().await.streams_over(path);
    let streams = [
        app.subscribe("topic=rooms/general", None).await,
        app.subscribe("topic=rooms/*", None).await,
    ];
    assert_eq!(app.hub.subscriber_count(), 2);
    drop(streams);
    let hub = app.hub.clone();
    wait_until(
        Duration::from_secs(5),
        "the hub let both streams go",
        || {
            let hub = hub.clone();
            async move { hub.subscriber_count() == 0 }
        },
    )
    .await;
}

/// Writers post to several rooms while a reader keeps disconnecting and resuming from the last
/// id it saw. Within each connection ids must strictly increase (no duplicate between replay
/// and live), and every event up to the last id a connection saw must be covered by it: seen
/// itself, or superseded by a newer event for the same URL (coalescing). No gap, no duplicate.
async fn resuming_under_concurrent_writes_has_no_gap_and_no_duplicate(path: StreamPath) {
    let app = std::sync::Arc::new(spawn_app().await.streams_over(path));
    let start = app.hub.head();
    let (done_tx, done_rx) = tokio::sync::watch::channel(None::<i64>);

    let writers: Vec<_> = (0..4)
        .map(|w| {
            let app = app.clone();
            tokio::spawn(async move {
                let mut written = Vec::new();
                for i in 0..50 {
                    let room = format!("r{}", (w * 7 + i) % 6);
                    let id = app.post_ok(&room, &format!("{w}-{i}")).await["event_id"]
                        .as_i64()
                        .unwrap();
                    written.push((format!("/api/rooms/{room}/recent"), id));
                }
                written
            })
        })
        .collect();

    let reader = {
        let app = app.clone();
        let mut done_rx = done_rx.clone();
        tokio::spawn(async move {
            let mut connections: Vec<(i64, Vec<(String, i64)>)> = Vec::new();
            let mut last = start;
            for round in 0.. {
                let mut stream: SseClient = app
                    .subscribe("topic=rooms/*", Some(&last.to_string()))
                    .await;
                let mut seen = Vec::new();
                let resumed_from = last;
                while seen.len() < 1 + round % 7 {
                    if done_rx.borrow().is_some_and(|head| last >= head) {
                        break;
                    }
                    tokio::select! {
                        event = stream.next_event() => {
                            let event = event.expect("open");
                            assert_eq!(event.event, "changed");
                            let id = event.id();
                            seen.push((event.json()["url"].as_str().unwrap().to_owned(), id));
                            last = id;
                        }
                        _ = done_rx.changed() => {}
                    }
                }
                connections.push((resumed_from, seen));
                if done_rx.borrow().is_some_and(|head| last >= head) {
                    return connections;
                }
            }
            unreachable!()
        })
    };

    let mut written = Vec::new();
    for writer in writers {
        written.extend(writer.await.unwrap());
    }
    let final_head = written.iter().map(|(_, id)| *id).max().unwrap();
    done_tx.send(Some(final_head)).unwrap();
    let connections = tokio::time::timeout(Duration::from_secs(30), reader)
        .await
        .expect("the reader catches up")
        .unwrap();

    assert!(connections.len() > 3, "the reader resumed several times");
    for (resumed_from, seen) in &connections {
        let ids: Vec<i64> = seen.iter().map(|(_, id)| *id).collect();
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "strictly increasing from {resumed_from}: {ids:?}"
        );
    }
    // The connection whose range (resumed_from, last seen] crosses an event must deliver it, or
    // a newer event for the same URL, itself or (when the replay put that newer event after the
    // point where the reader let go) in a later connection. Otherwise the event was lost.
    for (url, id) in &written {
        let crossing = connections
            .iter()
            .position(|(from, seen)| *from < *id && seen.last().is_some_and(|(_, last)| last >= id))
            .unwrap_or_else(|| panic!("no connection got past event {id}"));
        let covered = connections[crossing..]
            .iter()
            .flat_map(|(_, seen)| seen)
            .any(|(u, i)| u == url && i >= id);
        assert!(
            covered,
            "event {id} for {url} was lost (connections: {connections:?})"
        );
    }
}

/// A subscriber that never reads fills its bounded buffer and is dropped with a `reset`; a
/// subscriber that reads gets every event meanwhile. (The buffer must hold a whole commit
/// batch, here at most 16 writes, or even a reader that keeps up would overflow; it holds 16
/// batches, so that a reader slowed by other tests sharing the cores is not taken for a slow one.)
async fn a_subscriber_that_never_reads_is_reset_and_the_others_are_not_slowed(path: StreamPath) {
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicBool, Ordering};

    let app = std::sync::Arc::new(
        spawn_app_with(|c| {
            c.subscriber_buffer = 256;
            // Small kernel buffers so that the never-reading client blocks the stream soon.
            c.send_buffer_bytes = 8192;
        })
        .await
        .streams_over(path),
    );
    let mut fast = app.subscribe("topic=rooms/flood", None).await;

    // The slow subscriber: a raw socket with a tiny receive buffer that is not read until the end.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let addr: std::net::SocketAddr = app.base.trim_start_matches("http://").parse().unwrap();
    socket.connect(&addr.into()).unwrap();
    let mut slow: std::net::TcpStream = socket.into();
    if path == StreamPath::Shared {
        // Pipelined: actix-web answers this first, then serves the stream on its route.
        write!(slow, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    }
    write!(
        slow,
        "GET /api/events?topic=rooms/flood HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    .unwrap();
    wait_until(Duration::from_secs(5), "both streams subscribed", || {
        let hub = app.hub.clone();
        async move { hub.subscriber_count() == 2 }
    })
    .await;

    // Flood until the hub lets the slow one go, with a bound on how long that may take in all.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..16)
        .map(|_| {
            let (app, stop) = (app.clone(), stop.clone());
            tokio::spawn(async move {
                let mut ids = Vec::new();
                let mut i = 0;
                while !stop.load(Ordering::SeqCst) && tokio::time::Instant::now() < deadline {
                    ids.push(
                        app.post_ok("flood", &i.to_string()).await["event_id"]
                            .as_i64()
                            .unwrap(),
                    );
                    i += 1;
                }
                ids
            })
        })
        .collect();
    let mut fast_seen = Vec::new();
    while app.hub.subscriber_count() > 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slow subscriber was not dropped within 60 s of flooding"
        );
        let wait = deadline.saturating_duration_since(tokio::time::Instant::now());
        fast_seen.push(
            fast.next_event_within(wait)
                .await
                .expect("the fast stream stays open")
                .id(),
        );
    }
    // The slow one, read at last, at once: the stream had a moment to deliver its reset.
    slow.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let slow_reader = std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = slow.read_to_end(&mut text);
        String::from_utf8_lossy(&text).into_owned()
    });
    stop.store(true, Ordering::SeqCst);
    let mut written = Vec::new();
    for writer in writers {
        written.extend(writer.await.unwrap());
    }
    written.sort_unstable();
    let last = *written.last().unwrap();
    while fast_seen.last() != Some(&last) {
        let event = fast.next_event().await.expect("open");
        assert_eq!(event.event, "changed", "the fast subscriber is never reset");
        fast_seen.push(event.id());
    }
    assert_eq!(
        fast_seen, written,
        "the fast subscriber got every event, in order"
    );

    // Some events, then a reset with the head, then the end.
    let text = slow_reader.join().unwrap();
    let reset = text.rfind("event: reset").expect("a reset at the end");
    assert!(text[..reset].contains("event: changed"));
    assert!(text[reset..].contains("data: {\"reason\":\"overflow\"}"));
}
