//! Presence is ephemeral: never cacheable, never logged.

use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn presence_is_no_store_and_lists_who_announced() {
    let app = spawn_app().await;
    let empty = app.get("/api/rooms/general/presence").await;
    assert_eq!(empty.status(), 200);
    assert_eq!(empty.headers()["cache-control"], "no-store");
    assert!(!empty.headers().contains_key("etag"));

    let announced = app
        .client
        .post(app.url("/api/rooms/general/presence"))
        .json(&json!({ "name": "bob" }))
        .send()
        .await
        .unwrap();
    assert_eq!(announced.status(), 200);
    let here = app.get_json("/api/rooms/general/presence").await;
    assert_eq!(here["here"], json!(["bob"]));
}

#[tokio::test]
async fn a_presence_change_sends_a_nudge_without_an_id() {
    let app = spawn_app().await;
    let mut stream = app.subscribe("topic=rooms/general", None).await;
    app.client
        .post(app.url("/api/rooms/general/presence"))
        .json(&json!({ "name": "bob" }))
        .send()
        .await
        .unwrap();
    let event = stream.next_event().await.unwrap();
    assert_eq!(event.event, "changed");
    assert!(!event.has_id, "presence is not logged, so it has no id");
    assert_eq!(event.json()["url"], "/api/rooms/general/presence");
}
