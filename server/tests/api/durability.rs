//! Nothing is acknowledged or published before its commit.

use std::time::Duration;

use crate::helpers::spawn_app;

/// A deferred foreign key is checked at `COMMIT`: with this trap in place every message also
/// inserts a row whose key points nowhere, so the writer's statements all succeed and its
/// commit fails. A store that answered or published before its commit would send a 201 or a
/// nudge for a message that was never stored.
const COMMIT_TRAP: &str = "
    CREATE TABLE commit_trap_target (id INTEGER PRIMARY KEY);
    CREATE TABLE commit_trap (
        target INTEGER REFERENCES commit_trap_target(id) DEFERRABLE INITIALLY DEFERRED
    );
    CREATE TRIGGER commit_trap AFTER INSERT ON messages
    BEGIN INSERT INTO commit_trap (target) VALUES (1); END;
";

#[tokio::test]
async fn a_write_whose_commit_fails_is_neither_acknowledged_nor_published() {
    let app = spawn_app().await;
    let mut stream = app
        .subscribe("topic=rooms/general&topic=rooms/lobby", None)
        .await;
    let db = rusqlite::Connection::open(app.data_dir().join("nudge.sqlite3")).unwrap();
    db.busy_timeout(Duration::from_secs(5)).unwrap();
    db.execute_batch(COMMIT_TRAP).unwrap();

    let refused = app.post_message("general", "ann", "never committed").await;
    assert!(
        refused.status().is_server_error(),
        "a failed commit is not acknowledged: {}",
        refused.status()
    );
    let body: serde_json::Value = refused.json().await.unwrap();
    assert!(body["error"]["code"].is_string(), "the JSON error: {body}");

    db.execute_batch("DROP TRIGGER commit_trap").unwrap();
    let posted = app.post_ok("lobby", "committed").await;
    // Events arrive in commit order, so had the failed write been published it would come
    // first (on rooms/general).
    let first = stream
        .next_event()
        .await
        .expect("the committed write's nudge");
    assert_eq!(first.json()["topic"], "rooms/lobby", "{first:?}");
    assert_eq!(first.id(), posted["event_id"].as_i64().unwrap());
    assert!(app.recent_texts("general").await.is_empty());
}
