//! Web Push from DevTools: headless Chromium has no push service, so a test hands a push to the
//! ServiceWorker itself (`ServiceWorker.deliverPushMessage`), and reads the notifications the SW
//! showed back through the Notification API.

use std::time::Duration;

use anyhow::{anyhow, Context};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::browser::Browser;
use crate::wait::wait_until;

/// A notification as `registration.getNotifications()` gives it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Shown {
    /// Its title.
    pub title: String,
    /// Its body.
    pub body: String,
    /// Its tag.
    pub tag: String,
    /// `data.url`: the page a click opens.
    pub url: Option<String>,
}

/// The DevTools event [`Browser::registration_id`] reads: launch the browser with
/// `Browser::launch_with(name, viewport, PUSH_EVENTS)`.
pub const PUSH_EVENTS: &[&str] = &["ServiceWorker.workerRegistrationUpdated"];

impl Browser {
    /// Lets `origin` show notifications without a prompt, as a person who clicked "Allow".
    pub async fn grant_notifications(&self, origin: &str) -> anyhow::Result<()> {
        self.cdp(
            "Browser.grantPermissions",
            json!({ "origin": origin, "permissions": ["notifications"] }),
        )
        .await?;
        Ok(())
    }

    /// The id DevTools gives the ServiceWorker registration whose scope is `scope` (such as
    /// `http://127.0.0.1:PORT/`): learnt from the `workerRegistrationUpdated` event that
    /// `ServiceWorker.enable` sends, which chromedriver keeps in its `devtools` log when the
    /// browser was launched with [`PUSH_EVENTS`].
    pub async fn registration_id(&self, scope: &str, timeout: Duration) -> anyhow::Result<String> {
        self.cdp("ServiceWorker.enable", json!({})).await?;
        let found = wait_until(
            "the ServiceWorker registration in the DevTools log",
            timeout,
            Duration::from_millis(100),
            || async {
                for entry in self.driver().get_log("devtools").await? {
                    let event: Value = serde_json::from_str(&entry.message)?;
                    let Some(registrations) = event["params"]["registrations"].as_array() else {
                        continue;
                    };
                    for registration in registrations {
                        if registration["scopeURL"] == scope && registration["isDeleted"] != true {
                            if let Some(id) = registration["registrationId"].as_str() {
                                return Ok(Some(id.to_owned()));
                            }
                        }
                    }
                }
                Ok(None)
            },
        )
        .await;
        found.with_context(|| format!("{}: no registration for {scope}", self.name()))
    }

    /// Delivers `data` (the payload's text, as the browser decrypted it) in a push to the
    /// registration `id` of `origin`.
    pub async fn deliver_push(&self, origin: &str, id: &str, data: &str) -> anyhow::Result<()> {
        self.cdp(
            "ServiceWorker.deliverPushMessage",
            json!({ "origin": origin, "registrationId": id, "data": data }),
        )
        .await?;
        Ok(())
    }

    /// The notifications the current page's ServiceWorker registration shows now.
    pub async fn notifications(&self) -> anyhow::Result<Vec<Shown>> {
        let shown: Value = self
            .eval(
                r#"
                const reg = await navigator.serviceWorker.getRegistration("/");
                if (!reg) return null;
                return (await reg.getNotifications()).map((n) => ({
                    title: n.title, body: n.body, tag: n.tag,
                    url: n.data && typeof n.data.url === "string" ? n.data.url : null,
                }));
                "#,
            )
            .await?;
        if shown.is_null() {
            return Err(anyhow!("{}: no ServiceWorker registration", self.name()));
        }
        Ok(serde_json::from_value(shown)?)
    }
}

/// A request a push service received: its request line and headers (names lower-cased).
#[derive(Debug, Clone)]
pub struct Received {
    /// `POST /path HTTP/1.1`.
    pub line: String,
    /// The headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body's length (the encrypted payload).
    pub body_len: usize,
}

impl Received {
    /// The value of header `name` (lower case), if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A stand-in for the browser vendor's push service on 127.0.0.1 (which the server accepts with
/// `--push-allow-local-http`): it answers every request `201 Created` and hands each one to
/// the test. The encrypted payload is not read: the server's own tests decrypt it.
pub struct PushService {
    /// The URL to give as a subscription's endpoint.
    pub endpoint: String,
    received: tokio::sync::mpsc::UnboundedReceiver<Received>,
    task: tokio::task::JoinHandle<()>,
}

impl PushService {
    /// Listens on a free port.
    pub async fn start() -> anyhow::Result<PushService> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let endpoint = format!("http://{}/push/e2e", listener.local_addr()?);
        let (tx, received) = tokio::sync::mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, tx.clone()));
            }
        });
        Ok(PushService {
            endpoint,
            received,
            task,
        })
    }

    /// The next request it received, waiting at most `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> anyhow::Result<Received> {
        tokio::time::timeout(timeout, self.received.recv())
            .await
            .map_err(|_| anyhow!("no push arrived within {timeout:?}"))?
            .ok_or_else(|| anyhow!("the push service stopped"))
    }
}

impl Drop for PushService {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves one connection: each request (kept-alive ones too) is reported and answered 201.
async fn serve(
    stream: tokio::net::TcpStream,
    tx: tokio::sync::mpsc::UnboundedSender<Received>,
) -> anyhow::Result<()> {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let mut stream = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if stream.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let mut headers = Vec::new();
        loop {
            let mut header = String::new();
            stream.read_line(&mut header).await?;
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
            }
        }
        let len: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        stream.read_exact(&mut body).await?;
        let _ = tx.send(Received {
            line: line.trim_end().to_owned(),
            headers,
            body_len: len,
        });
        stream
            .get_mut()
            .write_all(b"HTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n")
            .await?;
    }
}

/// Replaces the browser's push service in the current page (headless Chromium has none, so
/// `pushManager.subscribe` cannot succeed here): `subscribe` returns a subscription to
/// `endpoint` with a fresh P-256 key and auth secret, and records its options in
/// `window.subscribedWith`; `getSubscription` and `unsubscribe` follow it.
pub async fn stand_in_push_manager(browser: &Browser, endpoint: &str) -> anyhow::Result<()> {
    let endpoint = serde_json::to_string(endpoint)?;
    browser
        .eval::<()>(&format!(
            r#"
            const endpoint = {endpoint};
            const pair = await crypto.subtle.generateKey({{ name: "ECDH", namedCurve: "P-256" }}, true, ["deriveBits"]);
            const raw = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
            const auth = crypto.getRandomValues(new Uint8Array(16));
            const b64u = (bytes) => btoa(String.fromCharCode(...bytes))
                .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
            let current = null;
            PushManager.prototype.getSubscription = async () => current;
            PushManager.prototype.subscribe = async (options) => {{
                const key = new Uint8Array(options.applicationServerKey);
                window.subscribedWith = {{ userVisibleOnly: options.userVisibleOnly, key: b64u(key) }};
                current = {{
                    endpoint,
                    options: {{ applicationServerKey: key.buffer }},
                    toJSON: () => ({{ endpoint, expirationTime: null, keys: {{ p256dh: b64u(raw), auth: b64u(auth) }} }}),
                    unsubscribe: async () => {{ current = null; return true; }},
                }};
                return current;
            }};
            "#
        ))
        .await
}
