//! The write path and the cacheable reads.

use serde_json::Value;

use crate::helpers::{assert_error, spawn_app};

#[tokio::test]
async fn a_post_answers_201_with_the_stored_message() {
    let app = spawn_app().await;
    let response = app.post_message("general", "ann", "hello").await;
    assert_eq!(response.status(), 201);
    let message: Value = response.json().await.unwrap();
    assert_eq!(message["room"], "general");
    assert_eq!(message["author"], "ann");
    assert_eq!(message["text"], "hello");
    assert!(message["id"].as_i64().unwrap() > 0);
    assert!(message["event_id"].as_i64().unwrap() > 0);
    assert!(message["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(app.recent_texts("general").await, vec!["hello"]);
}

#[tokio::test]
async fn recent_holds_the_ten_newest_oldest_first() {
    let app = spawn_app().await;
    for i in 0..13 {
        app.post_ok("general", &format!("m{i}")).await;
    }
    let expected: Vec<String> = (3..13).map(|i| format!("m{i}")).collect();
    assert_eq!(app.recent_texts("general").await, expected);
}

#[tokio::test]
async fn recent_is_revalidated_with_a_strong_etag_and_answers_304() {
    let app = spawn_app().await;
    let posted = app.post_ok("general", "one").await;
    let response = app.get("/api/rooms/general/recent").await;
    assert_eq!(response.headers()["cache-control"], "no-cache");
    let etag = response.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(etag, format!("\"{}\"", posted["event_id"]));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["last_event_id"], posted["event_id"]);

    let revalidated = app
        .client
        .get(app.url("/api/rooms/general/recent"))
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(revalidated.status(), 304);
    assert_eq!(revalidated.headers()["etag"], etag.as_str());
    assert!(revalidated.bytes().await.unwrap().is_empty());

    app.post_ok("general", "two").await;
    let changed = app
        .client
        .get(app.url("/api/rooms/general/recent"))
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 200, "a new message changes the ETag");
    assert_ne!(changed.headers()["etag"], etag.as_str());
}

#[tokio::test]
async fn the_first_message_creates_the_room_and_put_creates_one_explicitly() {
    let app = spawn_app().await;
    assert_error(
        app.get("/api/rooms/lobby/recent").await,
        404,
        "room_not_found",
    )
    .await;
    app.post_ok("lobby", "first").await;
    assert_eq!(app.recent_texts("lobby").await, vec!["first"]);

    let created = app
        .client
        .put(app.url("/api/rooms/quiet"))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let again = app
        .client
        .put(app.url("/api/rooms/quiet"))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);

    let rooms = app.get_json("/api/rooms").await;
    let names: Vec<_> = rooms["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["general", "lobby", "quiet"]);
}

#[tokio::test]
async fn pages_cut_before_and_after_an_id() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for i in 0..6 {
        ids.push(
            app.post_ok("general", &format!("m{i}")).await["id"]
                .as_i64()
                .unwrap(),
        );
    }
    let texts = |page: Value| -> Vec<String> {
        page["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["text"].as_str().unwrap().to_owned())
            .collect()
    };
    let after = app
        .get_json(&format!(
            "/api/rooms/general/messages?after={}&limit=2",
            ids[1]
        ))
        .await;
    assert_eq!(texts(after), vec!["m2", "m3"]);
    let before = app
        .get_json(&format!(
            "/api/rooms/general/messages?before={}&limit=2",
            ids[4]
        ))
        .await;
    assert_eq!(texts(before), vec!["m2", "m3"]);
    let latest = app.get_json("/api/rooms/general/messages?limit=3").await;
    assert_eq!(texts(latest), vec!["m3", "m4", "m5"]);
    let page = app
        .get(&format!("/api/rooms/general/messages?after={}", ids[5]))
        .await;
    assert_eq!(page.headers()["cache-control"], "no-cache");
    assert!(page.headers().contains_key("etag"));
}

#[tokio::test]
async fn the_web_app_is_served_at_the_root() {
    let app = spawn_app().await;
    let response = app.get("/").await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert_eq!(response.headers()["cache-control"], "no-cache");
}
