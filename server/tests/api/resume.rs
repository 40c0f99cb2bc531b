//! Resuming a stream: only the subscribed topics are read, the replay is capped, the retention
//! boundary is exact, and opening streams is rate-limited per address.

use std::collections::HashMap;
use std::sync::Arc;

use crate::helpers::{assert_error, spawn_app, spawn_app_with, StreamPath, TestApp};
use crate::sse_client::SseEvent;

/// Posts `count` messages round-robin over rooms `r0`…`r{rooms-1}`, several at once; returns
/// each message's room and event id.
async fn fill(app: &Arc<TestApp>, rooms: usize, count: usize) -> Vec<(String, i64)> {
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let app = app.clone();
            tokio::spawn(async move {
                let mut written = Vec::new();
                for i in (w..count).step_by(8) {
                    let room = format!("r{}", i % rooms);
                    let id = app.post_ok(&room, &i.to_string()).await["event_id"]
                        .as_i64()
                        .unwrap();
                    written.push((room, id));
                }
                written
            })
        })
        .collect();
    let mut all = Vec::new();
    for writer in writers {
        all.extend(writer.await.unwrap());
    }
    all.sort_by_key(|(_, id)| *id);
    all
}

/// Everything a stream replays: the events before the nudge of a marker posted after it opened.
async fn replayed(app: &TestApp, stream: &mut crate::sse_client::SseClient) -> Vec<SseEvent> {
    app.post_ok("marker", "end of replay").await;
    let mut events = stream
        .events_until(|e| e.event != "changed" || e.json()["topic"] == "rooms/marker")
        .await;
    events.pop();
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_from_an_old_id_in_a_large_log_replays_only_its_topics_coalesced() {
    let app = Arc::new(spawn_app().await);
    let written = fill(&app, 30, 600).await;
    let from = written[20].1;
    let mut stream = app
        .subscribe(
            "topic=rooms/r3&topic=rooms/r17&topic=rooms/marker",
            Some(&from.to_string()),
        )
        .await;
    let events = replayed(&app, &mut stream).await;

    let mut newest = HashMap::new();
    for (room, id) in written.iter().filter(|(_, id)| *id > from) {
        if room == "r3" || room == "r17" {
            newest.insert(format!("/api/rooms/{room}/recent"), *id);
        }
    }
    let mut want: Vec<_> = newest.into_iter().map(|(url, id)| (id, url)).collect();
    want.sort();
    let got: Vec<_> = events
        .iter()
        .map(|e| (e.id(), e.json()["url"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        got, want,
        "each subscribed URL once, at its newest id, in id order; no other topic"
    );
}

#[tokio::test]
async fn a_resume_that_missed_more_than_the_cap_gets_reset_too_many_missed() {
    let app = Arc::new(spawn_app_with(|c| c.max_replay_events = 5).await);
    let written = fill(&app, 1, 7).await;
    let head = written.last().unwrap().1;

    // Five missed: replayed (coalesced to one URL).
    let mut at_cap = app
        .subscribe("topic=rooms/r0", Some(&written[1].1.to_string()))
        .await;
    let event = at_cap.next_event().await.unwrap();
    assert_eq!((event.event.as_str(), event.id()), ("changed", head));

    // Six missed: the cap counts events read, not URLs, so a reset that carries the head.
    let mut over = app
        .subscribe("topic=rooms/r0", Some(&written[0].1.to_string()))
        .await;
    let event = over.next_event().await.unwrap();
    assert_eq!(event.event, "reset");
    assert_eq!(event.json()["reason"], "too_many_missed");
    assert_eq!(event.id(), head);
    // Then it is live.
    let live = app.post_ok("r0", "live").await["event_id"]
        .as_i64()
        .unwrap();
    assert_eq!(over.next_event().await.unwrap().id(), live);
}

/// Retention removed every id up to `pruned_through` (P). Resuming after P misses nothing;
/// after P - 1 it would miss event P itself, so it gets `reset`.
#[tokio::test]
async fn resuming_at_the_retention_boundary_is_exact() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for i in 0..8 {
        ids.push(
            app.post_ok("general", &i.to_string()).await["event_id"]
                .as_i64()
                .unwrap(),
        );
    }
    app.store
        .prune(nudge::Retention {
            max_events: 3,
            max_age_secs: 3600,
        })
        .await
        .unwrap();
    let p = app.store.log_range().await.unwrap().pruned_through;
    let head = *ids.last().unwrap();
    assert_eq!(p, head - 3);

    let mut below = app
        .subscribe("topic=rooms/general", Some(&(p - 1).to_string()))
        .await;
    let event = below.next_event().await.unwrap();
    assert_eq!(event.event, "reset", "event {p} is gone: {event:?}");
    assert_eq!(event.json()["reason"], "older_than_log");
    assert_eq!(event.id(), head);

    for after in [p, p + 1] {
        let mut stream = app
            .subscribe("topic=rooms/general", Some(&after.to_string()))
            .await;
        let event = stream.next_event().await.unwrap();
        assert_eq!(
            (event.event.as_str(), event.id()),
            ("changed", head),
            "resuming after {after} replays the kept events"
        );
    }
}

async fn opening_streams_faster_than_the_rate_gets_429(path: StreamPath) {
    let app = spawn_app_with(|c| {
        c.stream_open_rate_per_address = 1;
        c.stream_open_burst = 2;
    })
    .await
    .streams_over(path);
    let _first = app.subscribe("topic=rooms/general", None).await;
    let _second = app.subscribe("topic=rooms/general", None).await;
    let refused = app.stream_request("topic=rooms/general", None, None).await;
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after), "retry after {retry_after}");
    assert_error(refused, 429, "too_many_stream_opens").await;
    // Refused before subscribing: nothing holds a place in the hub.
    assert_eq!(app.hub.subscriber_count(), 2);
}

#[tokio::test]
async fn opening_streams_faster_than_the_rate_gets_429_on_a_dedicated_connection() {
    opening_streams_faster_than_the_rate_gets_429(StreamPath::Dedicated).await
}

#[tokio::test]
async fn opening_streams_faster_than_the_rate_gets_429_on_a_shared_connection() {
    opening_streams_faster_than_the_rate_gets_429(StreamPath::Shared).await
}

#[tokio::test]
async fn a_rate_of_zero_turns_the_limit_off() {
    let app = spawn_app_with(|c| {
        c.stream_open_rate_per_address = 0;
        c.stream_open_burst = 1;
    })
    .await;
    let mut streams = Vec::new();
    for _ in 0..5 {
        streams.push(app.subscribe("topic=rooms/general", None).await);
    }
    assert_eq!(app.hub.subscriber_count(), 5);
}
