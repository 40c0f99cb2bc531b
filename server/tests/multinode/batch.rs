//! Group commit on PostgreSQL: writes that share a transaction succeed or fail one by one.

use std::sync::Arc;

use watercooler::domain::{NewMessage, RoomName};
use watercooler::store::{self, settings_with_buffer, Backend, Store, StoreError};

use crate::pg::Cluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_the_database_refuses_fails_alone() {
    let url = Cluster::shared().fresh_database();
    let store: Arc<dyn Store> = store::open(Backend::Postgres(url), settings_with_buffer(16))
        .await
        .unwrap()
        .store;
    // PostgreSQL text cannot hold NUL, so that one write fails inside a shared statement.
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let store = store.clone();
            let text = if i == 17 {
                "bad\0".to_owned()
            } else {
                format!("m{i}")
            };
            tokio::spawn(async move {
                let message = NewMessage {
                    room: "batch".into(),
                    author: "ann".into(),
                    text,
                };
                store.append_message(message, None).await
            })
        })
        .collect();
    for (i, task) in tasks.into_iter().enumerate() {
        let result = task.await.unwrap();
        if i == 17 {
            assert!(matches!(result, Err(StoreError::Database(_))), "{result:?}");
        } else {
            assert!(result.is_ok(), "write {i}: {result:?}");
        }
    }
    let room = RoomName::parse("batch").unwrap();
    let stored = store.recent(&room, 100).await.unwrap().unwrap().messages;
    assert_eq!(stored.len(), 63);
}
