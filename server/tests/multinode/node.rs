//! A `nudge` node as a child process on a PostgreSQL database, killed on drop.

use std::process::{Child, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::sse_client::SseClient;

/// A running node and an HTTP client for it.
pub struct Node {
    child: Child,
    pub base: String,
    pub client: reqwest::Client,
}

impl Node {
    /// Starts `nudge --database-url URL` and waits for its listening line.
    pub fn start(database_url: &str) -> Self {
        Self::start_with(database_url, &[])
    }

    /// [`Node::start`] with more flags.
    pub fn start_with(database_url: &str, flags: &[&str]) -> Self {
        let mut command = crate::process_common::nudge_command();
        command
            .args(["--database-url", database_url, "--heartbeat-secs", "1"])
            .args(flags)
            // A 503 during an outage is expected here, not worth a line each.
            .env("RUST_LOG", "warn,nudge::error=off")
            .stderr(Stdio::inherit());
        let (child, base) = crate::process_common::spawn(&mut command);
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("a client");
        Self {
            child,
            base,
            client,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// POSTs a message, optionally with an idempotency key.
    pub async fn post(&self, room: &str, text: &str, key: Option<&str>) -> reqwest::Response {
        let mut request = self
            .client
            .post(self.url(&format!("/api/rooms/{room}/messages")))
            .json(&json!({ "author": "ann", "text": text }));
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        request.send().await.expect("the node answers")
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let response = self.client.get(self.url(path)).send().await.expect("GET");
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.expect("JSON")
    }

    /// Opens an event stream; once this returns, every later commit reaches it.
    pub async fn subscribe(&self, query: &str) -> SseClient {
        // No overall timeout: a stream is meant to last.
        let response = reqwest::Client::new()
            .get(self.url(&format!("/api/events?{query}")))
            .send()
            .await
            .expect("the stream opens");
        assert_eq!(response.status(), 200, "opening /api/events?{query}");
        SseClient::new(response)
    }
}

impl crate::accounts_common::AsUser for Node {
    fn client(&self) -> &reqwest::Client {
        &self.client
    }

    fn base(&self) -> &str {
        &self.base
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
