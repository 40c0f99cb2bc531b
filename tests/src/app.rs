//! The real `nudge` server, started the way a user starts it, on a free port.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use serde::{Deserialize, Serialize};
use tempfile::TempDir;

use crate::workspace_root;

/// How long a debug build may take to open its database and bind.
const START_TIMEOUT: Duration = Duration::from_secs(30);
const LISTENING_PREFIX: &str = "listening on ";

/// A message as the API returns it (fields the tests do not read are ignored).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Message {
    /// Message id, increasing in commit order.
    pub id: i64,
    /// Room the message was posted to.
    pub room: String,
    /// Display name of the poster.
    pub author: String,
    /// Message body.
    pub text: String,
    /// Id of the event that announced it.
    pub event_id: i64,
}

/// `GET /api/rooms/{room}/recent`.
#[derive(Debug, Clone, Deserialize)]
pub struct Recent {
    /// The room.
    pub room: String,
    /// The most recent messages, oldest first.
    pub messages: Vec<Message>,
    /// The id a stream should resume after.
    pub last_event_id: i64,
}

#[derive(Serialize)]
struct NewMessage<'a> {
    author: &'a str,
    text: &'a str,
}

/// One connection as the server's request log saw it.
#[derive(Debug, Clone, Deserialize)]
pub struct Connection {
    /// `HTTP/1.1` or `HTTP/2.0`.
    pub version: String,
    /// `METHOD /path?query` of each request it carried.
    pub requests: Vec<String>,
}

/// A running `nudge` server with its own data directory; killed on drop.
pub struct TestApp {
    base_url: String,
    port: u16,
    bin: PathBuf,
    www: PathBuf,
    data_dir: PathBuf,
    child: Option<Child>,
    tls: bool,
    push: bool,
    tls_url: Option<String>,
    log_path: PathBuf,
    http: reqwest::Client,
    // Last, so the directory is removed after the process that writes into it is gone.
    _dir: TempDir,
}

/// How a test wants its server.
#[derive(Debug, Clone, Copy, Default)]
pub struct AppOptions {
    /// Serve a private copy of `www/` (see [`TestApp::www_dir`]) that the test may change, to
    /// play a new build.
    pub copy_www: bool,
    /// Also serve HTTPS (HTTP/2) with the self-signed development certificate, and keep the
    /// per-connection request log (see [`TestApp::tls_url`] and [`TestApp::connections`]).
    pub tls: bool,
    /// Turn Web Push on (`--push-contact mailto:test@example.com --push-allow-local-http`).
    pub push: bool,
}

/// Starts the server binary from `NUDGE_BIN` (default `<workspace>/target/debug/nudge`) serving
/// `NUDGE_WWW` (default `<workspace>/www`) on `127.0.0.1:0`, and waits for its first stdout line,
/// which names the port it bound.
pub async fn spawn_app() -> anyhow::Result<TestApp> {
    spawn_app_with(AppOptions::default()).await
}

/// [`spawn_app`] with options.
pub async fn spawn_app_with(options: AppOptions) -> anyhow::Result<TestApp> {
    let root = workspace_root();
    let bin = env_path("NUDGE_BIN").unwrap_or_else(|| root.join("target/debug/nudge"));
    let www = env_path("NUDGE_WWW").unwrap_or_else(|| root.join("www"));
    if !bin.is_file() {
        bail!(
            "no server binary at {} (build it with `cargo build -p watercooler --bin nudge`, or set NUDGE_BIN)",
            bin.display()
        );
    }
    spawn_binary(bin, www, options).await
}

/// Starts another app's server binary `bin` the same way (`--bind 127.0.0.1:0 --data-dir …
/// --www-dir www`, the address read from its first stdout line), e.g. `examples/todos`.
pub async fn spawn_binary(
    bin: PathBuf,
    mut www: PathBuf,
    options: AppOptions,
) -> anyhow::Result<TestApp> {
    if !bin.is_file() {
        bail!("no server binary at {}", bin.display());
    }
    let dir = tempfile::Builder::new().prefix("nudge-e2e-").tempdir()?;
    let data_dir = dir.path().join("data");
    std::fs::create_dir_all(&data_dir)?;
    if options.copy_www {
        let copy = dir.path().join("www");
        copy_dir(&www, &copy).with_context(|| format!("copying {}", www.display()))?;
        www = copy;
    }
    let mut app = TestApp {
        base_url: String::new(),
        port: 0,
        bin,
        www,
        data_dir,
        child: None,
        tls: options.tls,
        push: options.push,
        tls_url: None,
        log_path: dir.path().join("server.log"),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?,
        _dir: dir,
    };
    app.start().await?;
    Ok(app)
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// Reads the first `count` stdout lines on a blocking thread, which then keeps draining the
/// pipe so a chatty server never blocks on a full pipe.
async fn read_first_lines(
    stdout: impl Read + Send + 'static,
    count: usize,
) -> anyhow::Result<Vec<String>> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let first = (0..count)
            .map(|_| match lines.next() {
                Some(Ok(line)) => Ok(line),
                Some(Err(err)) => Err(anyhow!("reading server stdout: {err}")),
                None => Err(anyhow!("server exited before printing its addresses")),
            })
            .collect();
        let _ = tx.send(first);
        for _ in lines.by_ref() {}
    });
    rx.await.context("stdout reader thread ended")?
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

impl TestApp {
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The absolute URL of `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// `https://127.0.0.1:PORT` when the app was started with [`AppOptions::tls`].
    pub fn tls_url(&self) -> anyhow::Result<&str> {
        self.tls_url
            .as_deref()
            .context("this app was started without TLS")
    }

    /// The server's per-connection request log (`/debug/connections`), with TLS on.
    pub async fn connections(&self) -> anyhow::Result<Vec<Connection>> {
        #[derive(Deserialize)]
        struct Log {
            connections: Vec<Connection>,
        }
        let response = self.http.get(self.url("/debug/connections")).send().await?;
        let log: Log = response.error_for_status()?.json().await?;
        Ok(log.connections)
    }

    /// The directory the server serves the page from (a private copy with
    /// [`AppOptions::copy_www`]).
    pub fn www_dir(&self) -> &Path {
        &self.www
    }

    /// Starts the process: on port 0 the first time, then on the port it bound then, so the
    /// browser finds the same origin (and its ServiceWorker and caches) again.
    async fn start(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)?;
        let mut command = Command::new(&self.bin);
        if self.tls {
            // A restart takes the same HTTPS port again, like the plain one.
            let tls_port = self
                .tls_url
                .as_deref()
                .and_then(|u| u.rsplit(':').next())
                .unwrap_or("0");
            command
                .args([
                    "--tls-bind",
                    &format!("127.0.0.1:{tls_port}"),
                    "--tls-self-signed",
                ])
                .args(["--connection-log", "256"]);
        }
        if self.push {
            command
                .args(["--push-contact", "mailto:test@example.com"])
                .arg("--push-allow-local-http");
        }
        let mut child = command
            .arg("--bind")
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--www-dir")
            .arg(&self.www)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("starting {}", self.bin.display()))?;
        let stdout = child.stdout.take().context("server stdout")?;
        // From here on the process is owned by the handle, so an early return still kills it.
        self.child = Some(child);

        let lines = if self.tls { 2 } else { 1 };
        let first_lines = tokio::time::timeout(START_TIMEOUT, read_first_lines(stdout, lines))
            .await
            .map_err(|_| {
                anyhow!(
                    "server printed nothing within {START_TIMEOUT:?}\n{}",
                    self.log_tail()
                )
            })?
            .map_err(|err| anyhow!("{err:#}\n{}", self.log_tail()))?;
        let first_line = &first_lines[0];
        if let Some(line) = first_lines.get(1) {
            // `listening on https://localhost:PORT (HTTP/2)`: the certificate is for both names.
            let port = line
                .split("https://localhost:")
                .nth(1)
                .and_then(|rest| rest.split(' ').next())
                .with_context(|| format!("unexpected second stdout line {line:?}"))?;
            self.tls_url = Some(format!("https://127.0.0.1:{port}"));
        }
        let url = first_line.strip_prefix(LISTENING_PREFIX).ok_or_else(|| {
            anyhow!(
                "unexpected first stdout line {first_line:?}, wanted `{LISTENING_PREFIX}http://…`"
            )
        })?;
        self.base_url = url.trim_end_matches('/').to_string();
        self.port = self
            .base_url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .with_context(|| format!("no port in {}", self.base_url))?;
        Ok(())
    }

    /// Starts the server again after [`TestApp::stop`], on the same port and data directory.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.stop()?;
        self.start().await
    }

    /// Kills the server (like a crash or a pulled cable) and reaps it.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill().context("killing the server")?;
            child.wait().context("reaping the server")?;
        }
        Ok(())
    }

    /// `POST /api/rooms/{room}/messages`; fails unless the answer is 201.
    pub async fn post_message(
        &self,
        room: &str,
        author: &str,
        text: &str,
    ) -> anyhow::Result<Message> {
        let res = self
            .http
            .post(self.url(&format!("/api/rooms/{room}/messages")))
            .json(&NewMessage { author, text })
            .send()
            .await?;
        let status = res.status();
        let body = res.text().await?;
        if status != reqwest::StatusCode::CREATED {
            bail!("POST /api/rooms/{room}/messages answered {status}, wanted 201: {body}");
        }
        serde_json::from_str(&body).with_context(|| format!("parsing the 201 body {body}"))
    }

    /// `GET /api/rooms/{room}/recent`.
    pub async fn recent(&self, room: &str) -> anyhow::Result<Recent> {
        let res = self
            .http
            .get(self.url(&format!("/api/rooms/{room}/recent")))
            .send()
            .await?;
        let status = res.status();
        let body = res.text().await?;
        if !status.is_success() {
            bail!("GET /api/rooms/{room}/recent answered {status}: {body}");
        }
        serde_json::from_str(&body).with_context(|| format!("parsing the recent body {body}"))
    }

    /// `GET /metrics` (Prometheus text), as text.
    pub async fn metrics_text(&self) -> anyhow::Result<String> {
        let res = self.http.get(self.url("/metrics")).send().await?;
        let status = res.status();
        let body = res.text().await?;
        if !status.is_success() {
            bail!("GET /metrics answered {status}: {body}");
        }
        Ok(body)
    }

    /// The value of the sample `name` whose labels include all of `labels`, or `None` when the
    /// server does not (yet) report it.
    pub async fn metric(&self, name: &str, labels: &[(&str, &str)]) -> anyhow::Result<Option<f64>> {
        Ok(crate::metrics::sample(
            &self.metrics_text().await?,
            name,
            labels,
        ))
    }

    /// The number of GETs of the `recent` resource (any room) the server answered, 200s and
    /// 304s alike: every one of them went over the network.
    pub async fn recent_gets(&self) -> anyhow::Result<f64> {
        let text = self.metrics_text().await?;
        let labels = [("method", "GET"), ("route", "/api/rooms/{room}/recent")];
        Ok(crate::metrics::sum(&text, "nudge_http_responses_total", &labels).unwrap_or(0.0))
    }

    /// The event streams open at the server right now.
    pub async fn streams_open(&self) -> anyhow::Result<Option<f64>> {
        self.metric("nudge_event_streams_open", &[]).await
    }

    /// The last lines the server logged, for failure messages.
    pub fn log_tail(&self) -> String {
        tail(&self.log_path, 40)
    }
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    let start = all.len().saturating_sub(lines);
    format!(
        "--- server log ({}) ---\n{}",
        path.display(),
        all[start..].join("\n")
    )
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let _ = self.stop();
        if std::thread::panicking() {
            eprintln!("{}", self.log_tail());
        }
    }
}
