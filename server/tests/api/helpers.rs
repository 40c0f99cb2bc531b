//! `spawn_app()` and the request helpers the tests share.

use std::future::Future;
use std::time::Duration;

use nudge_server::hub::Hub;
use nudge_server::store::Store;
use nudge_server::{Application, Config};
use reqwest::header::CONTENT_TYPE;
use serde_json::{json, Value};
use tempfile::TempDir;

use crate::sse_client::SseClient;

/// A running server and a client for it. The server stops when the test's runtime ends; the
/// data directory is removed on drop.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub hub: Hub,
    pub store: std::sync::Arc<dyn Store>,
    _data: TempDir,
}

/// Starts a server with default settings.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts a server after `tweak` adjusted its configuration.
pub async fn spawn_app_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    let data = tempfile::tempdir().expect("a temp dir");
    let www = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../www");
    let mut config = Config::for_tests(data.path().to_owned(), www);
    tweak(&mut config);
    let app = Application::build(config).await.expect("the app builds");
    let base = format!("http://127.0.0.1:{}", app.port());
    let hub = app.hub();
    let store = app.store();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        base,
        client: reqwest::Client::new(),
        hub,
        store,
        _data: data,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn post_message(&self, room: &str, author: &str, text: &str) -> reqwest::Response {
        self.client
            .post(self.url(&format!("/api/rooms/{room}/messages")))
            .json(&json!({ "author": author, "text": text }))
            .send()
            .await
            .expect("the request is sent")
    }

    /// Posts and asserts a 201, returning the stored message.
    pub async fn post_ok(&self, room: &str, text: &str) -> Value {
        let response = self.post_message(room, "ann", text).await;
        assert_eq!(response.status(), 201, "posting {text:?}");
        response.json().await.expect("a JSON body")
    }

    pub async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .header(CONTENT_TYPE, content_type)
            .body(body)
            .send()
            .await
            .expect("the request is sent")
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("the request is sent")
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let response = self.get(path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.expect("a JSON body")
    }

    /// The texts of a room's recent messages, oldest first.
    pub async fn recent_texts(&self, room: &str) -> Vec<String> {
        let recent = self.get_json(&format!("/api/rooms/{room}/recent")).await;
        recent["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .map(|m| m["text"].as_str().expect("text").to_owned())
            .collect()
    }

    /// Opens an event stream. The server subscribes before it answers, so once the headers are
    /// here every later write reaches this stream.
    pub async fn subscribe(&self, query: &str, last_event_id: Option<&str>) -> SseClient {
        let mut request = self.client.get(self.url(&format!("/api/events?{query}")));
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = request.send().await.expect("the stream opens");
        assert_eq!(response.status(), 200, "opening /api/events?{query}");
        SseClient::new(response)
    }
}

/// Polls `check` until it holds, failing the test after `timeout`.
pub async fn wait_until<F, Fut>(timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Asserts the JSON error shape and code.
pub async fn assert_error(response: reqwest::Response, status: u16, code: &str) {
    assert_eq!(response.status(), status, "expected {status} {code}");
    let body: Value = response.json().await.expect("a JSON error body");
    assert_eq!(body["error"]["code"], code, "body: {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "a message for people: {body}"
    );
}
