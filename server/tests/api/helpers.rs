//! `spawn_app()` and the request helpers the tests share.

use reqwest::header::CONTENT_TYPE;
use serde_json::{json, Value};
use tempfile::TempDir;
use watercooler::hub::Hub;
use watercooler::store::Store;
use watercooler::{Application, Config};

pub use crate::accounts_common::{password_of, session_cookie, AsUser};
use crate::sse_client::SseClient;

/// A running server and a client for it. The server stops when the test's runtime ends; the
/// data directory is removed on drop.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub hub: Hub,
    pub store: std::sync::Arc<dyn Store>,
    /// Which path the helpers open event streams over.
    pub stream_path: StreamPath,
    _data: TempDir,
}

/// The server's two ways of serving an event stream. A stream request that is the first on its
/// connection gets the connection to itself (served outside actix-web's dispatcher, answered
/// with `Connection: close`); one that follows another request on a keep-alive connection is
/// served by actix-web's route. Both must keep the same contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamPath {
    /// A new connection whose first request opens the stream.
    Dedicated,
    /// A keep-alive connection that first carried `GET /healthz`.
    Shared,
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
        stream_path: StreamPath::Dedicated,
        _data: data,
    }
}

impl TestApp {
    /// The same app, with streams opened over `path`.
    pub fn streams_over(mut self, path: StreamPath) -> Self {
        self.stream_path = path;
        self
    }

    /// Sends a stream request over [`TestApp::stream_path`], each on a connection of its own,
    /// and checks that a stream that opened was served by that path.
    pub async fn stream_request(
        &self,
        query: &str,
        cookie: Option<&str>,
        last_event_id: Option<&str>,
    ) -> reqwest::Response {
        let mut headers = Vec::new();
        if let Some(cookie) = cookie {
            headers.push(("Cookie", cookie));
        }
        if let Some(id) = last_event_id {
            headers.push(("Last-Event-ID", id));
        }
        let target = format!("/api/events?{query}");
        let response = match self.stream_path {
            StreamPath::Dedicated => {
                let mut request = reqwest::Client::new().get(self.url(&target));
                for (name, value) in headers {
                    request = request.header(name, value);
                }
                request.send().await.expect("the stream request is sent")
            }
            // By hand, so that the stream request surely follows another on its connection.
            StreamPath::Shared => {
                crate::http1::after_another_request(&self.base, &target, &headers).await
            }
        };
        if response.status() == 200 {
            let dedicated = response
                .headers()
                .get(reqwest::header::CONNECTION)
                .is_some_and(|v| v == "close");
            assert_eq!(
                dedicated,
                self.stream_path == StreamPath::Dedicated,
                "/api/events?{query} was served over {:?}",
                self.stream_path
            );
        }
        response
    }

    /// The server's data directory (its SQLite file is `nudge.sqlite3` inside).
    pub fn data_dir(&self) -> &std::path::Path {
        self._data.path()
    }

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
        let response = self.stream_request(query, None, last_event_id).await;
        assert_eq!(response.status(), 200, "opening /api/events?{query}");
        SseClient::new(response)
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

/// Account requests (register, sign in, send with a cookie) come from the shared helpers.
impl AsUser for TestApp {
    fn client(&self) -> &reqwest::Client {
        &self.client
    }

    fn base(&self) -> &str {
        &self.base
    }
}

/// Requests as a signed-in user: `cookie` is the `nudge_session=…` pair to send, or `None`.
impl TestApp {
    /// Posts a message as `cookie`'s user (under the account's name), or as `someone`.
    pub async fn post_as(&self, room: &str, cookie: Option<&str>, text: &str) -> reqwest::Response {
        let body = match cookie {
            Some(_) => json!({ "text": text }),
            None => json!({ "author": "someone", "text": text }),
        };
        let path = format!("/api/rooms/{room}/messages");
        self.send_as(reqwest::Method::POST, &path, cookie, Some(body))
            .await
    }

    /// Opens an event stream as `cookie`'s user without asserting its status.
    pub async fn open_stream_as(&self, query: &str, cookie: Option<&str>) -> reqwest::Response {
        self.stream_request(query, cookie, None).await
    }

    /// [`TestApp::subscribe`] as `cookie`'s user.
    pub async fn subscribe_as(&self, query: &str, cookie: &str) -> SseClient {
        let response = self.open_stream_as(query, Some(cookie)).await;
        assert_eq!(response.status(), 200, "opening /api/events?{query}");
        SseClient::new(response)
    }
}
