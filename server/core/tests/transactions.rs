//! An app's rows and the log entry naming them commit together or not at all, and the nudge
//! goes out only after the commit, in commit order: on SQLite through the writer's closure, on
//! PostgreSQL in a transaction the app holds.

#[path = "../../tests/common/pg.rs"]
mod pg;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use nudge::store::postgres::log_change;
use nudge::{Audience, LoggedEvent, Migrations, Nudge, Revocation, StoreError, TopicSet};

const ITEMS: Migrations = Migrations {
    component: "items",
    sqlite: &["CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL)"],
    postgres: &["CREATE TABLE items (id bigserial PRIMARY KEY, name text NOT NULL)"],
};

fn items_topic() -> Arc<TopicSet> {
    Arc::new(TopicSet::parse(["items"]).unwrap())
}

/// Records the notes of the events it is shown, in the order shown.
#[derive(Default)]
struct Notes(Mutex<Vec<(i64, String)>>);

impl Audience for Notes {
    fn committed(&self, event: &LoggedEvent) -> Vec<Revocation> {
        if let Some(note) = &event.note {
            self.0.lock().unwrap().push((event.id, note.clone()));
        }
        Vec::new()
    }
}

async fn nothing_for(subscription: &mut nudge::hub::Subscription, within: Duration) {
    let got = tokio::time::timeout(within, subscription.recv()).await;
    assert!(got.is_err(), "nothing published yet, got {got:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_failed_write_leaves_neither_its_rows_nor_its_change() {
    let dir = tempfile::tempdir().unwrap();
    let nudge = Nudge::builder()
        .sqlite(dir.path())
        .migrations(ITEMS)
        .build()
        .await
        .unwrap();
    let store = nudge.sqlite().unwrap().clone();
    let mut subscription = nudge.hub().subscribe(items_topic());

    let failed: Result<(), StoreError> = store
        .write(|tx| {
            tx.conn()
                .execute("INSERT INTO items (name) VALUES ('lost')", [])?;
            tx.changed("items", "/items")?;
            Err(StoreError::Database("the app changed its mind".into()))
        })
        .await;
    assert!(failed.is_err());
    let id = store
        .write(|tx| {
            tx.conn()
                .execute("INSERT INTO items (name) VALUES ('kept')", [])?;
            tx.changed("items", "/items")
        })
        .await
        .unwrap();
    let event = subscription.recv().await.unwrap();
    assert_eq!(event.id, Some(id), "the first event is the kept write's");
    let names: Vec<String> = store
        .read(|tx| {
            let mut stmt = tx.prepare("SELECT name FROM items")?;
            let names = stmt
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            Ok(names)
        })
        .await
        .unwrap();
    assert_eq!(names, ["kept"]);
}

async fn on_postgres(url: &str, audience: Arc<dyn Audience>) -> Nudge {
    Nudge::builder()
        .postgres(url)
        .migrations(ITEMS)
        .audience(audience)
        .build()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_an_app_held_transaction_publishes_after_its_commit_and_not_on_rollback() {
    let url = pg::Cluster::shared().fresh_database();
    let nudge = on_postgres(&url, Arc::new(Notes::default())).await;
    let store = nudge.postgres().unwrap().clone();
    let mut subscription = nudge.hub().subscribe(items_topic());
    let mut client = store.connect().await.unwrap();

    // Rolled back: neither the row nor the event.
    let tx = client.transaction().await.unwrap();
    tx.execute("INSERT INTO items (name) VALUES ('lost')", &[])
        .await
        .unwrap();
    log_change(&tx, "items", "/items/lost", None).await.unwrap();
    tx.rollback().await.unwrap();

    // Held open: logged, not yet committed, so not yet published.
    let tx = client.transaction().await.unwrap();
    tx.execute("INSERT INTO items (name) VALUES ('kept')", &[])
        .await
        .unwrap();
    let id = log_change(&tx, "items", "/items/kept", None).await.unwrap();
    nothing_for(&mut subscription, Duration::from_millis(300)).await;
    tx.commit().await.unwrap();
    store.wake();
    let event = tokio::time::timeout(Duration::from_secs(10), subscription.recv())
        .await
        .expect("published once committed")
        .unwrap();
    assert_eq!((event.id, event.url.as_str()), (Some(id), "/items/kept"));
    let names: Vec<String> = client
        .query("SELECT name FROM items", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(names, ["kept"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_ids_follow_commit_order_across_concurrent_transactions() {
    let url = pg::Cluster::shared().fresh_database();
    let nudge = on_postgres(&url, Arc::new(Notes::default())).await;
    let store = nudge.postgres().unwrap().clone();
    let mut subscription = nudge.hub().subscribe(items_topic());
    let mut first = store.connect().await.unwrap();
    let mut second = store.connect().await.unwrap();

    // The first logs and holds the commit lock; the second waits for it, whatever it tries.
    let a = first.transaction().await.unwrap();
    let id_a = log_change(&a, "items", "/items/a", None).await.unwrap();
    let waiting = tokio::spawn(async move {
        let b = second.transaction().await.unwrap();
        let id_b = log_change(&b, "items", "/items/b", None).await.unwrap();
        b.commit().await.unwrap();
        id_b
    });
    nothing_for(&mut subscription, Duration::from_millis(300)).await;
    assert!(
        !waiting.is_finished(),
        "the second waits for the first's commit"
    );
    a.commit().await.unwrap();
    let id_b = waiting.await.unwrap();
    assert!(id_b > id_a, "ids in commit order");
    store.wake();
    let got: Vec<_> = [
        subscription.recv().await.unwrap(),
        subscription.recv().await.unwrap(),
    ]
    .iter()
    .map(|e| e.id.unwrap())
    .collect();
    assert_eq!(got, [id_a, id_b], "published in commit order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_note_reaches_every_nodes_audience() {
    let url = pg::Cluster::shared().fresh_database();
    let (notes_a, notes_b) = (Arc::new(Notes::default()), Arc::new(Notes::default()));
    let a = on_postgres(&url, notes_a.clone()).await;
    let b = on_postgres(&url, notes_b.clone()).await;
    let mut on_b = b.hub().subscribe(items_topic());
    let mut client = a.postgres().unwrap().connect().await.unwrap();
    let tx = client.transaction().await.unwrap();
    let id = log_change(&tx, "items", "/items", Some("granted ann"))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let event = tokio::time::timeout(Duration::from_secs(10), on_b.recv())
        .await
        .expect("published on the other node")
        .unwrap();
    assert_eq!(event.id, Some(id));
    // Shown to the audience before it was published there; the node that wrote sees it too.
    assert_eq!(*notes_b.0.lock().unwrap(), [(id, "granted ann".to_owned())]);
    a.postgres().unwrap().published(id).await;
    assert_eq!(*notes_a.0.lock().unwrap(), [(id, "granted ann".to_owned())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_an_answer_is_kept_with_its_write_and_a_reused_key_is_refused() {
    use nudge::idempotency::{postgres as once, IdempotencyKey, StoredAnswer};
    let url = pg::Cluster::shared().fresh_database();
    let nudge = on_postgres(&url, Arc::new(Notes::default())).await;
    let mut client = nudge.postgres().unwrap().connect().await.unwrap();
    let key = IdempotencyKey::parse("k-1").unwrap();
    let request = nudge::idempotency::Fingerprint([1; 32]);
    let answer = StoredAnswer::json(
        actix_web::http::StatusCode::CREATED,
        &[("Location", "/items/1".to_owned())],
        &serde_json::json!({ "id": 1 }),
    )
    .unwrap();

    // A write that rolls back keeps no answer.
    let tx = client.transaction().await.unwrap();
    once::lock(&tx).await.unwrap();
    assert_eq!(once::find(&tx, &key, &request).await.unwrap(), None);
    once::keep(&tx, &key, &request, &answer).await.unwrap();
    tx.rollback().await.unwrap();

    let tx = client.transaction().await.unwrap();
    once::lock(&tx).await.unwrap();
    assert_eq!(once::find(&tx, &key, &request).await.unwrap(), None);
    tx.execute("INSERT INTO items (name) VALUES ('once')", &[])
        .await
        .unwrap();
    once::keep(&tx, &key, &request, &answer).await.unwrap();
    tx.commit().await.unwrap();

    // The retry finds the first answer; another request with the key is refused.
    let tx = client.transaction().await.unwrap();
    once::lock(&tx).await.unwrap();
    assert_eq!(
        once::find(&tx, &key, &request).await.unwrap(),
        Some(answer.clone())
    );
    let other = nudge::idempotency::Fingerprint([2; 32]);
    assert!(matches!(
        once::find(&tx, &key, &other).await,
        Err(StoreError::IdempotencyConflict)
    ));
    tx.commit().await.unwrap();
}
