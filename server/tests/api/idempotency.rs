//! `Idempotency-Key`: a retry takes effect once; reusing a key for another request is a 422.

use serde_json::{json, Value};

use crate::helpers::{assert_error, spawn_app, TestApp};

async fn post_with_key(app: &TestApp, key: &str, text: &str) -> reqwest::Response {
    app.client
        .post(app.url("/api/rooms/general/messages"))
        .header("Idempotency-Key", key)
        .json(&json!({ "author": "ann", "text": text }))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_retry_with_the_same_key_stores_once_and_answers_the_same() {
    let app = spawn_app().await;
    let first = post_with_key(&app, "k-1", "once").await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let retry = post_with_key(&app, "k-1", "once").await;
    assert_eq!(retry.status(), 201);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    let retry: Value = retry.json().await.unwrap();
    assert_eq!(first, retry);
    assert_eq!(app.recent_texts("general").await, vec!["once"]);
}

#[tokio::test]
async fn the_same_key_with_another_body_is_refused() {
    let app = spawn_app().await;
    assert_eq!(post_with_key(&app, "k-2", "first").await.status(), 201);
    assert_error(
        post_with_key(&app, "k-2", "second").await,
        422,
        "idempotency_key_reused",
    )
    .await;
    assert_eq!(app.recent_texts("general").await, vec!["first"]);
}

#[tokio::test]
async fn a_malformed_key_is_refused() {
    let app = spawn_app().await;
    let long = "k".repeat(256);
    assert_error(
        post_with_key(&app, &long, "x").await,
        400,
        "invalid_idempotency_key",
    )
    .await;
    assert!(app.recent_texts("general").await.is_empty());
}
