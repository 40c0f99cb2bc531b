//! Idempotency keys hold across nodes: the key is unique in the shared database, and writes
//! that carry one are serialised by the commit lock, so a concurrent duplicate finds the first.

use std::sync::Arc;

use watercooler::domain::{NewMessage, RoomName};
use watercooler::store::{self, settings_with_buffer, Backend, IdempotencyKey, Store};

use crate::pg::Cluster;

fn message(text: &str) -> NewMessage {
    NewMessage {
        room: "keys".into(),
        author: "ann".into(),
        text: text.into(),
    }
}

async fn node(url: &str) -> Arc<dyn Store> {
    store::open(Backend::Postgres(url.to_owned()), settings_with_buffer(16))
        .await
        .unwrap()
        .store
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_on_another_node_stores_nothing_new() {
    let url = Cluster::shared().fresh_database();
    let (a, b) = (node(&url).await, node(&url).await);
    let key = || Some(IdempotencyKey("retry-1".into()));
    let first = a.append_message(message("once"), key()).await.unwrap();
    let head = a.log_range().await.unwrap().head;
    let retry = b.append_message(message("once"), key()).await.unwrap();
    assert!(retry.replayed);
    assert_eq!(retry.message, first.message);
    assert_eq!(b.log_range().await.unwrap().head, head, "no new event");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_duplicates_on_two_nodes_store_one_message() {
    let url = Cluster::shared().fresh_database();
    let (a, b) = (node(&url).await, node(&url).await);
    for i in 0..40 {
        let key = format!("dup-{i}");
        let text = format!("message {i}");
        let (on_a, on_b) = tokio::join!(
            a.append_message(message(&text), Some(IdempotencyKey(key.clone()))),
            b.append_message(message(&text), Some(IdempotencyKey(key))),
        );
        let (on_a, on_b) = (on_a.unwrap(), on_b.unwrap());
        assert_eq!(
            on_a.message, on_b.message,
            "both answer with the one stored message"
        );
        assert!(on_a.replayed != on_b.replayed, "exactly one stored it");
    }
    let room = RoomName::parse("keys").unwrap();
    let stored = a.recent(&room, 100).await.unwrap().unwrap().messages;
    assert_eq!(stored.len(), 40);
}
