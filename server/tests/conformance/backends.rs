//! Cases that look beneath the trait, so each is written for one backend: which index a
//! replay reads (its query plan) and when a write is answered (durability).

use std::sync::Arc;
use std::time::Duration;

use nudge::EventLog;
use watercooler::domain::NewMessage;
use watercooler::store::{self, settings_with_buffer, Backend, Opened};
use watercooler::topic::TopicSet;

use crate::pg;

fn topics(list: &[&str]) -> TopicSet {
    TopicSet::parse(list.iter().copied()).unwrap()
}

/// Topics of the large logs below: 50 rooms.
const TOPICS: i64 = 50;
/// Events in the large logs below.
const EVENTS: i64 = 50_000;

/// SQLite's writer runs with WAL and `synchronous=FULL` (a commit is on disk when it returns)
/// and enforces foreign keys: asked of the writer's own connection, since `synchronous` belongs
/// to a connection and is not stored in the file.
#[tokio::test]
async fn sqlite_writer_runs_with_wal_and_synchronous_full() {
    let dir = tempfile::tempdir().unwrap();
    let opened = sqlite_at(dir.path()).await;
    let store = opened.nudge.sqlite().unwrap().clone();
    let settings = store.writer_settings().await.unwrap();
    assert_eq!(settings.journal_mode, "wal");
    assert_eq!(settings.synchronous, 2, "FULL");
    assert_eq!(settings.foreign_keys, 1);
    store.close().await;
}

#[tokio::test]
async fn sqlite_replay_searches_the_topic_index() {
    let dir = tempfile::tempdir().unwrap();
    let opened = sqlite_at(dir.path()).await;
    let store = opened.nudge.sqlite().unwrap().clone();
    {
        // Written beside the store, in one transaction: far faster than appending.
        let mut db = rusqlite::Connection::open(dir.path().join("nudge.sqlite3")).unwrap();
        db.busy_timeout(Duration::from_secs(10)).unwrap();
        let tx = db.transaction().unwrap();
        {
            let mut insert = tx
                .prepare("INSERT INTO events (topic, url, created_at) VALUES (?1, ?2, 0)")
                .unwrap();
            for i in 0..EVENTS {
                let room = format!("t{}", i % TOPICS);
                insert
                    .execute([format!("rooms/{room}"), format!("/api/rooms/{room}/recent")])
                    .unwrap();
            }
        }
        tx.commit().unwrap();
        db.execute_batch("ANALYZE").unwrap();
    }
    let subscribed = topics(&["rooms/t3", "rooms/t4", "other/*"]);
    let plan = store.replay_plan(100, &subscribed).await.unwrap();
    let reads: Vec<_> = plan.iter().filter(|step| step.contains("events")).collect();
    assert_eq!(reads.len(), 3, "one read per selector: {plan:#?}");
    for step in reads {
        assert!(
            step.starts_with("SEARCH events USING INDEX events_by_topic (topic"),
            "{plan:#?}"
        );
    }
    // And the replay reads what the plan says: t3's and t4's events after id 100.
    let replay = store.replay(100, &subscribed, usize::MAX).await.unwrap();
    assert!(replay.complete);
    assert!(replay.events.len() as i64 > 2 * (EVENTS / TOPICS) - 10);
    assert!(replay
        .events
        .iter()
        .all(|e| e.id > 100 && (e.topic == "rooms/t3" || e.topic == "rooms/t4")));
    assert!(replay.events.windows(2).all(|w| w[0].id < w[1].id));
    store.close().await;
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_replay_searches_the_topic_index() {
    let url = pg::Cluster::shared().fresh_database();
    let opened = postgres_at(&url, 16).await;
    let store = opened.nudge.postgres().unwrap().clone();
    let db = connect(&url).await;
    db.batch_execute(&format!(
        "INSERT INTO events (id, topic, url, created_at)
         SELECT nextval('event_ids'), 'rooms/t' || (g % {TOPICS}),
                '/api/rooms/t' || (g % {TOPICS}) || '/recent', 0
         FROM generate_series(1, {EVENTS}) g;
         ANALYZE events;"
    ))
    .await
    .unwrap();
    let subscribed = topics(&["rooms/t3", "rooms/t4", "other/*"]);
    let plan = store
        .replay_plan(100, &subscribed)
        .await
        .unwrap()
        .join("\n");
    assert!(
        !plan.contains("Seq Scan on events"),
        "no scan of the whole log:\n{plan}"
    );
    assert!(
        plan.matches("on events_by_topic").count() + plan.matches("using events_by_topic").count()
            >= 2,
        "the exact topics and the prefix read the index:\n{plan}"
    );
    let replay = store.replay(100, &subscribed, usize::MAX).await.unwrap();
    assert!(replay.complete);
    let want: i64 = db
        .query_one(
            "SELECT count(*) FROM events WHERE topic IN ('rooms/t3', 'rooms/t4') AND id > 100",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(replay.events.len() as i64, want);
    assert!(replay
        .events
        .iter()
        .all(|e| e.id > 100 && (e.topic == "rooms/t3" || e.topic == "rooms/t4")));
    assert!(replay.events.windows(2).all(|w| w[0].id < w[1].id));
    store.close().await;
}

/// A lock this test holds, which a deferred constraint trigger makes every commit that stored
/// a message wait for: the writer's statements complete, its `COMMIT` does not.
const HOLD: i64 = 0x6e75_6467_65ff;

/// A commit held back on purpose: until it completes the append is not answered, nothing is
/// published, and no other session sees the message; once it completes, all three happen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_answers_and_publishes_only_after_the_commit() {
    let url = pg::Cluster::shared().fresh_database();
    let opened = postgres_at(&url, 64).await;
    let (hub, store) = (opened.nudge.hub().clone(), opened.store.clone());
    let db = connect(&url).await;
    db.batch_execute(&format!(
        "CREATE FUNCTION test_hold_commit() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN PERFORM pg_advisory_xact_lock({HOLD}); RETURN NULL; END $$;
         CREATE CONSTRAINT TRIGGER test_hold_commit AFTER INSERT ON messages
             DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION test_hold_commit();
         SELECT pg_advisory_lock({HOLD});"
    ))
    .await
    .unwrap();
    let mut subscription = hub.subscribe(Arc::new(topics(&["rooms/*"])));

    let mut append = tokio::spawn({
        let store = store.clone();
        async move {
            store
                .append_message(
                    NewMessage {
                        room: "general".into(),
                        author: "ann".into(),
                        text: "held".into(),
                    },
                    None,
                )
                .await
        }
    });
    // The writer's COMMIT is waiting for the lock (bounded wait for that to be visible).
    let what = "the commit waits for the lock";
    crate::wait::wait_until(Duration::from_secs(10), what, || async {
        let waiting: i64 = db
            .query_one(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        waiting > 0
    })
    .await;
    // Held: however long we look, no answer and no event, and the row is not visible.
    let (answered, published) = tokio::join!(
        tokio::time::timeout(Duration::from_millis(300), &mut append),
        tokio::time::timeout(Duration::from_millis(300), subscription.recv()),
    );
    assert!(answered.is_err(), "answered before its commit");
    assert!(published.is_err(), "published before its commit");
    let visible: i64 = db
        .query_one("SELECT count(*) FROM messages WHERE text = 'held'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(visible, 0);

    db.execute("SELECT pg_advisory_unlock($1)", &[&HOLD])
        .await
        .unwrap();
    let appended = tokio::time::timeout(Duration::from_secs(10), append)
        .await
        .expect("answered once committed")
        .unwrap()
        .expect("stored");
    let event = tokio::time::timeout(Duration::from_secs(10), subscription.recv())
        .await
        .expect("published once committed")
        .unwrap();
    assert_eq!(event.id, Some(appended.message.event_id));
    store.close().await;
}

async fn sqlite_at(dir: &std::path::Path) -> Opened {
    store::open(Backend::Sqlite(dir.to_owned()), settings_with_buffer(16))
        .await
        .unwrap()
}

async fn postgres_at(url: &str, buffer: usize) -> Opened {
    store::open(
        Backend::Postgres(url.to_owned()),
        settings_with_buffer(buffer),
    )
    .await
    .unwrap()
}

/// Every write that logs wakes every node: a commit sends a `NOTIFY` on `nudge_events`, so
/// other nodes' followers publish at once rather than at their periodic read. Checked for
/// each kind of write the chat makes (a message, a new room, a membership change).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_every_logged_write_notifies_the_other_nodes() {
    use futures_util::StreamExt;
    use watercooler::domain::{RoomName, UserName};
    use watercooler::store::accounts::{NewSession, TokenHash};

    let url = pg::Cluster::shared().fresh_database();
    let opened = postgres_at(&url, 16).await;
    let (listener, mut connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let (tx, mut notifications) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(Ok(message)) = messages.next().await {
            if let tokio_postgres::AsyncMessage::Notification(n) = message {
                let _ = tx.send(n.channel().to_owned());
            }
        }
    });
    listener.batch_execute("LISTEN nudge_events").await.unwrap();
    async fn heard(
        notifications: &mut tokio::sync::mpsc::UnboundedReceiver<String>,
    ) -> Option<String> {
        tokio::time::timeout(Duration::from_secs(5), notifications.recv())
            .await
            .ok()
            .flatten()
    }

    let message = NewMessage {
        room: "general".into(),
        author: "ann".into(),
        text: "heard everywhere".into(),
    };
    opened.store.append_message(message, None).await.unwrap();
    assert_eq!(
        heard(&mut notifications).await.as_deref(),
        Some("nudge_events"),
        "a message"
    );
    let room = RoomName::parse("lobby").unwrap();
    assert!(opened.store.create_room(&room).await.unwrap());
    assert_eq!(
        heard(&mut notifications).await.as_deref(),
        Some("nudge_events"),
        "a new room"
    );
    let ann = UserName::parse("ann").unwrap();
    let session = NewSession {
        token_hash: TokenHash([1; 32]),
        expires_at_ms: i64::MAX / 2,
    };
    opened
        .accounts
        .register(&ann, "h".into(), session)
        .await
        .unwrap();
    let secret = RoomName::parse("secret").unwrap();
    opened
        .accounts
        .create_private_room(&secret, &ann)
        .await
        .unwrap();
    assert_eq!(
        heard(&mut notifications).await.as_deref(),
        Some("nudge_events"),
        "a private room"
    );
}
