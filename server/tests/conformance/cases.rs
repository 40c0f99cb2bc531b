//! The cases of the conformance suite, each a function of a fresh [`Fixture`].

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use watercooler::domain::{NewMessage, PageCursor, RoomName};
use watercooler::store::{IdempotencyKey, Retention, StoreError};
use watercooler::topic::TopicSet;

use crate::Fixture;

fn room(name: &str) -> RoomName {
    RoomName::parse(name).unwrap()
}

fn message(room: &str, text: &str) -> NewMessage {
    NewMessage {
        room: room.into(),
        author: "ann".into(),
        text: text.into(),
    }
}

fn topics(list: &[&str]) -> TopicSet {
    TopicSet::parse(list.iter().copied()).unwrap()
}

async fn append(f: &Fixture, room: &str, text: &str) -> watercooler::domain::Message {
    f.store
        .append_message(message(room, text), None)
        .await
        .unwrap()
        .message
}

pub async fn general_exists_from_the_start(f: Fixture) {
    let rooms = f.store.rooms().await.unwrap();
    assert_eq!(rooms.len(), 1);
    assert_eq!(rooms[0].name, "general");
    let recent = f.store.recent(&room("general"), 10).await.unwrap().unwrap();
    assert!(recent.messages.is_empty());
    assert_eq!(recent.last_event_id, rooms[0].created_event_id);
}

pub async fn append_stores_the_message_and_its_event(f: Fixture) {
    let appended = f
        .store
        .append_message(message("general", "hi"), None)
        .await
        .unwrap();
    assert!(!appended.replayed);
    let m = appended.message;
    assert_eq!(
        (m.room.as_str(), m.author.as_str(), m.text.as_str()),
        ("general", "ann", "hi")
    );
    let events = f
        .store
        .events_after(0, &topics(&["rooms/general"]))
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].id, m.event_id);
    assert_eq!(events[0].url, "/api/rooms/general/recent");
    let range = f.store.log_range().await.unwrap();
    assert_eq!(range.head, m.event_id);
    assert_eq!(range.pruned_through, 0);
}

pub async fn recent_is_the_newest_oldest_first(f: Fixture) {
    for i in 0..12 {
        append(&f, "general", &format!("m{i}")).await;
    }
    let last = append(&f, "general", "m12").await;
    let recent = f.store.recent(&room("general"), 10).await.unwrap().unwrap();
    let texts: Vec<_> = recent.messages.iter().map(|m| m.text.clone()).collect();
    let want: Vec<_> = (3..13).map(|i| format!("m{i}")).collect();
    assert_eq!(texts, want);
    assert_eq!(recent.last_event_id, last.event_id);
}

pub async fn pages_cut_before_and_after(f: Fixture) {
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(append(&f, "general", &format!("m{i}")).await.id);
    }
    let texts = |cursor, limit| {
        let store = f.store.clone();
        async move {
            let page = store
                .page(&room("general"), cursor, limit)
                .await
                .unwrap()
                .unwrap();
            page.messages
                .into_iter()
                .map(|m| m.text)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(texts(PageCursor::After(ids[0]), 2).await, ["m1", "m2"]);
    assert_eq!(texts(PageCursor::Before(ids[4]), 2).await, ["m2", "m3"]);
    assert_eq!(texts(PageCursor::Latest, 2).await, ["m3", "m4"]);
    assert!(texts(PageCursor::After(ids[4]), 2).await.is_empty());
}

pub async fn missing_rooms_are_none(f: Fixture) {
    assert!(f
        .store
        .recent(&room("nowhere"), 10)
        .await
        .unwrap()
        .is_none());
    let page = f
        .store
        .page(&room("nowhere"), PageCursor::Latest, 10)
        .await
        .unwrap();
    assert!(page.is_none());
}

pub async fn create_room_reports_whether_it_was_new(f: Fixture) {
    let mut hub_sub = f.hub.subscribe(Arc::new(topics(&["rooms"])));
    assert!(f.store.create_room(&room("lobby")).await.unwrap());
    assert!(!f.store.create_room(&room("lobby")).await.unwrap());
    let names: Vec<_> = f
        .store
        .rooms()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, ["general", "lobby"]);
    let event = hub_sub.recv().await.unwrap();
    assert_eq!(event.topic, "rooms");
    // A message to a new room creates it too.
    append(&f, "auto", "x").await;
    assert_eq!(f.store.rooms().await.unwrap().len(), 3);
}

pub async fn events_after_filters_by_topic_in_id_order(f: Fixture) {
    let a = append(&f, "alpha", "1").await.event_id;
    let b = append(&f, "beta", "2").await.event_id;
    let c = append(&f, "alpha", "3").await.event_id;
    let exact = f
        .store
        .events_after(0, &topics(&["rooms/alpha"]))
        .await
        .unwrap();
    assert_eq!(exact.iter().map(|e| e.id).collect::<Vec<_>>(), [a, c]);
    let prefix = f
        .store
        .events_after(a, &topics(&["rooms/*"]))
        .await
        .unwrap();
    assert_eq!(prefix.iter().map(|e| e.id).collect::<Vec<_>>(), [b, c]);
    let rooms_topic = f.store.events_after(0, &topics(&["rooms"])).await.unwrap();
    assert_eq!(rooms_topic.len(), 3, "general, alpha and beta were created");
}

pub async fn events_are_published_after_commit_in_commit_order(f: Fixture) {
    let mut sub = f.hub.subscribe(Arc::new(topics(&["rooms/*"])));
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(append(&f, "general", &i.to_string()).await.event_id);
    }
    for id in ids {
        let event = sub.recv().await.unwrap();
        assert_eq!(event.id, Some(id));
        // Published means committed: a reader sees it in the log.
        let logged = f
            .store
            .events_after(id - 1, &topics(&["rooms/*"]))
            .await
            .unwrap();
        assert_eq!(logged.first().map(|e| e.id), Some(id));
    }
}

pub async fn concurrent_appends_get_distinct_increasing_ids(f: Fixture) {
    let mut sub = f.hub.subscribe(Arc::new(topics(&["rooms/*"])));
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let store = f.store.clone();
            tokio::spawn(async move {
                store
                    .append_message(message(&format!("r{}", i % 4), &i.to_string()), None)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut event_ids = HashSet::new();
    for task in tasks {
        assert!(event_ids.insert(task.await.unwrap().message.event_id));
    }
    let mut published = Vec::new();
    while published.len() < 64 {
        published.push(sub.recv().await.unwrap().id.unwrap());
    }
    assert!(
        published.windows(2).all(|w| w[0] < w[1]),
        "published in id order: {published:?}"
    );
    assert_eq!(published.iter().copied().collect::<HashSet<_>>(), event_ids);
    let logged = f
        .store
        .events_after(0, &topics(&["rooms/*"]))
        .await
        .unwrap();
    assert_eq!(logged.iter().map(|e| e.id).collect::<Vec<_>>(), published);
}

pub async fn idempotent_retry_stores_once(f: Fixture) {
    let key = || Some(IdempotencyKey("key-1".into()));
    let first = f
        .store
        .append_message(message("general", "once"), key())
        .await
        .unwrap();
    let retry = f
        .store
        .append_message(message("general", "once"), key())
        .await
        .unwrap();
    assert!(retry.replayed);
    assert_eq!(first.message, retry.message);
    let recent = f.store.recent(&room("general"), 10).await.unwrap().unwrap();
    assert_eq!(recent.messages.len(), 1);
    assert_eq!(
        f.store.log_range().await.unwrap().head,
        first.message.event_id,
        "no new event"
    );
}

pub async fn idempotency_key_reuse_is_a_conflict(f: Fixture) {
    let key = || Some(IdempotencyKey("key-2".into()));
    f.store
        .append_message(message("general", "a"), key())
        .await
        .unwrap();
    let reuse = f.store.append_message(message("general", "b"), key()).await;
    assert!(
        matches!(reuse, Err(StoreError::IdempotencyConflict)),
        "{reuse:?}"
    );
    let other_room = f.store.append_message(message("lobby", "a"), key()).await;
    assert!(matches!(other_room, Err(StoreError::IdempotencyConflict)));
    assert_eq!(
        f.store
            .recent(&room("general"), 10)
            .await
            .unwrap()
            .unwrap()
            .messages
            .len(),
        1
    );
    assert!(
        f.store.recent(&room("lobby"), 10).await.unwrap().is_none(),
        "nothing of it stayed"
    );
}

pub async fn retention_by_count_moves_the_resumable_range(f: Fixture) {
    for i in 0..10 {
        append(&f, "general", &i.to_string()).await;
    }
    let head = f.store.log_range().await.unwrap().head;
    let removed = f
        .store
        .prune(Retention {
            max_events: 3,
            max_age_secs: 3600,
        })
        .await
        .unwrap();
    assert!(removed > 0);
    let range = f.store.log_range().await.unwrap();
    assert_eq!(range.head, head);
    assert_eq!(range.pruned_through, head - 3);
    let left = f
        .store
        .events_after(0, &topics(&["rooms/general"]))
        .await
        .unwrap();
    assert_eq!(
        left.iter().map(|e| e.id).collect::<Vec<_>>(),
        [head - 2, head - 1, head]
    );
    // Messages are data, not log: they stay.
    assert_eq!(
        f.store
            .recent(&room("general"), 20)
            .await
            .unwrap()
            .unwrap()
            .messages
            .len(),
        10
    );
}

pub async fn retention_by_age_removes_old_events(f: Fixture) {
    append(&f, "general", "old").await;
    let kept = f
        .store
        .prune(Retention {
            max_events: 1000,
            max_age_secs: 3600,
        })
        .await
        .unwrap();
    assert_eq!(kept, 0, "nothing is an hour old");
    // Let the clock pass the event's millisecond, then an age limit of zero removes it.
    let written = SystemTime::now();
    while written.elapsed().unwrap_or_default() < Duration::from_millis(2) {
        tokio::task::yield_now().await;
    }
    let removed = f
        .store
        .prune(Retention {
            max_events: 1000,
            max_age_secs: 0,
        })
        .await
        .unwrap();
    assert!(
        removed >= 2,
        "the general room's event and the message's: {removed}"
    );
    let range = f.store.log_range().await.unwrap();
    assert_eq!(range.pruned_through, range.head);
}

pub async fn closed_store_refuses_writes(f: Fixture) {
    append(&f, "general", "before").await;
    f.store.close().await;
    let after = f
        .store
        .append_message(message("general", "after"), None)
        .await;
    assert!(matches!(after, Err(StoreError::Closed)), "{after:?}");
}

/// Appends `count` messages round-robin over `rooms` rooms (`r0`, `r1`, …), many at once so
/// that they share commits; returns every event id with its room, in id order.
async fn fill(f: &Fixture, rooms: usize, count: usize) -> Vec<(i64, String)> {
    let tasks: Vec<_> = (0..count)
        .map(|i| {
            let store = f.store.clone();
            let room = format!("r{}", i % rooms);
            tokio::spawn(async move {
                let m = store
                    .append_message(message(&room, &i.to_string()), None)
                    .await
                    .unwrap()
                    .message;
                (m.event_id, room)
            })
        })
        .collect();
    let mut written = Vec::new();
    for task in tasks {
        written.push(task.await.unwrap());
    }
    written.sort();
    written
}

pub async fn replay_reads_only_the_subscribed_topics_in_id_order(f: Fixture) {
    let written = fill(&f, 20, 400).await;
    let from = written[50].0;
    let subscribed = topics(&["rooms/r3", "rooms/r7", "rooms/r1"]);
    let replay = f.store.replay(from, &subscribed, 10_000).await.unwrap();
    assert!(replay.complete);
    let want: Vec<i64> = written
        .iter()
        .filter(|(id, room)| *id > from && ["r3", "r7", "r1"].contains(&room.as_str()))
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(
        replay.events.iter().map(|e| e.id).collect::<Vec<_>>(),
        want,
        "exactly the subscribed topics' events after the id, in id order"
    );
    assert!(replay.events.iter().all(|e| subscribed.matches(&e.topic)));

    // A prefix with an exact topic it covers: every event once.
    let prefix = topics(&["rooms/*", "rooms/r3"]);
    let replay = f.store.replay(from, &prefix, 10_000).await.unwrap();
    let want: Vec<i64> = written
        .iter()
        .filter(|(id, _)| *id > from)
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(replay.events.iter().map(|e| e.id).collect::<Vec<_>>(), want);
    // The room list's topic `rooms` is not below `rooms/`.
    assert!(replay.events.iter().all(|e| e.topic.starts_with("rooms/")));
}

pub async fn replay_past_its_cap_is_incomplete(f: Fixture) {
    let written = fill(&f, 1, 6).await;
    let from = written[0].0;
    // Five events were missed (raw events, even though they are one URL).
    let at_cap = f
        .store
        .replay(from, &topics(&["rooms/r0"]), 5)
        .await
        .unwrap();
    assert!(at_cap.complete);
    assert_eq!(at_cap.events.len(), 5);
    let over = f
        .store
        .replay(from, &topics(&["rooms/r0"]), 4)
        .await
        .unwrap();
    assert!(!over.complete, "five missed, a cap of four");
    assert!(over.events.is_empty());
    assert_eq!(over.range, at_cap.range);
}

/// After retention removed every id up to `pruned_through`, resuming after `pruned_through`
/// misses nothing (its events are all kept) and resuming after anything below misses the event
/// numbered `pruned_through`: the range says so, from the same snapshot as the events.
pub async fn resuming_at_the_retention_boundary(f: Fixture) {
    fill(&f, 1, 8).await;
    f.store
        .prune(Retention {
            max_events: 3,
            max_age_secs: 3600,
        })
        .await
        .unwrap();
    let all = topics(&["rooms/r0"]);
    let p = f.store.log_range().await.unwrap().pruned_through;
    let head = f.store.log_range().await.unwrap().head;
    assert_eq!(p, head - 3);

    let below = f.store.replay(p - 1, &all, 100).await.unwrap();
    assert_eq!(
        below.range.pruned_through, p,
        "the caller must reset: event {p} is gone"
    );
    assert_eq!(
        below.events.iter().map(|e| e.id).collect::<Vec<_>>(),
        [p + 1, p + 2, p + 3],
        "only what is kept"
    );

    let at = f.store.replay(p, &all, 100).await.unwrap();
    assert!(at.complete);
    assert_eq!(
        at.events.iter().map(|e| e.id).collect::<Vec<_>>(),
        [p + 1, p + 2, p + 3]
    );

    let above = f.store.replay(p + 1, &all, 100).await.unwrap();
    assert_eq!(
        above.events.iter().map(|e| e.id).collect::<Vec<_>>(),
        [p + 2, p + 3]
    );
}
