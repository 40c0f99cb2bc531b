//! `/metrics` is Prometheus text and counts what operators need.

use std::collections::HashMap;

use crate::helpers::{assert_error, spawn_app, spawn_app_with};

/// Parses the text exposition strictly enough to catch malformed output: every sample line is
/// `name{labels} value` or `name value`, every name was declared by a `# TYPE` line, the text
/// ends with `# EOF`, and values are numbers.
fn parse(text: &str) -> HashMap<String, f64> {
    let mut declared = Vec::new();
    let mut samples = HashMap::new();
    assert_eq!(text.lines().last(), Some("# EOF"), "ends with # EOF");
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            declared.push(name.to_owned());
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad line {line:?}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}"));
        let name = series.split('{').next().unwrap();
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "bad name in {line:?}"
        );
        assert!(
            declared.iter().any(|d| name.starts_with(d.as_str())),
            "{name} has no # TYPE"
        );
        if let Some(labels) = series.strip_prefix(name) {
            assert!(
                labels.is_empty() || (labels.starts_with('{') && labels.ends_with('}')),
                "{line:?}"
            );
        }
        samples.insert(series.to_owned(), value);
    }
    samples
}

async fn scrape(app: &crate::helpers::TestApp) -> HashMap<String, f64> {
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    parse(&response.text().await.unwrap())
}

#[tokio::test]
async fn metrics_parse_and_count_streams_writes_and_revalidations() {
    let app = spawn_app().await;
    // Opening the store may itself publish (the `general` room, announced once).
    let published_before = scrape(&app).await["nudge_events_published_total"];
    let _stream = app.subscribe("topic=rooms/general", None).await;
    app.post_ok("general", "hi").await;
    let first = app.get("/api/rooms/general/recent").await;
    let etag = first.headers()["etag"].clone();
    let revalidated = app
        .client
        .get(app.url("/api/rooms/general/recent"))
        .header("If-None-Match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(revalidated.status(), 304);

    let m = scrape(&app).await;
    let recent = |status: u16| {
        m.get(&format!(
            "nudge_http_responses_total{{method=\"GET\",route=\"/api/rooms/{{room}}/recent\",status=\"{status}\"}}"
        ))
        .copied()
    };
    assert_eq!(recent(200), Some(1.0));
    assert_eq!(recent(304), Some(1.0));
    assert_eq!(m.get("nudge_event_streams_open"), Some(&1.0));
    assert_eq!(
        m["nudge_events_published_total"] - published_before,
        1.0,
        "one post, one event"
    );
    assert_eq!(m.get("nudge_write_duration_seconds_count"), Some(&1.0));
    assert_eq!(m.get("nudge_store_errors_total"), Some(&0.0));
}

#[tokio::test]
async fn unknown_methods_are_501_and_never_become_labels() {
    let app = spawn_app().await;
    let long = "X".repeat(8 * 1024);
    let mut methods: Vec<String> = (0..50).map(|n| format!("METHOD{n}")).collect();
    methods.push(long);
    methods.push("get".to_owned());
    for method in &methods {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let response = app
            .client
            .request(method, app.url("/api/rooms"))
            .send()
            .await
            .unwrap();
        assert_error(response, 501, "method_not_implemented").await;
    }
    let text = app.get("/metrics").await.text().await.unwrap();
    assert!(text.len() < 16 * 1024, "{} bytes of metrics", text.len());
    let m = parse(&text);
    let methods: std::collections::BTreeSet<&str> = m
        .keys()
        .filter_map(|series| series.split("method=\"").nth(1))
        .filter_map(|rest| rest.split('"').next())
        .collect();
    let known = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "OTHER",
    ];
    assert!(
        methods.iter().all(|m| known.contains(m)),
        "methods: {methods:?}"
    );
    assert_eq!(
        m.get(r#"nudge_http_responses_total{method="OTHER",route="/api/rooms",status="501"}"#),
        Some(&52.0)
    );
}

#[tokio::test]
async fn refusals_are_counted_with_their_code() {
    let app = spawn_app_with(|c| {
        c.write_rate_per_address = 1;
        c.write_burst = 1;
    })
    .await;
    assert_eq!(app.post_message("general", "ann", "1").await.status(), 201);
    assert_error(
        app.post_message("general", "ann", "2").await,
        429,
        "rate_limited",
    )
    .await;
    let cross = app
        .client
        .post(app.url("/api/rooms/general/messages"))
        .header("Origin", "https://evil.example")
        .json(&serde_json::json!({ "author": "ann", "text": "3" }))
        .send()
        .await
        .unwrap();
    // Refusals carry the headers every response carries.
    assert_eq!(cross.headers()["x-content-type-options"], "nosniff");
    assert_error(cross, 403, "cross_origin_write").await;

    let m = scrape(&app).await;
    let posts = |status: u16| {
        m.get(&format!(
            "nudge_http_responses_total{{method=\"POST\",route=\"/api/rooms/{{room}}/messages\",status=\"{status}\"}}"
        ))
        .copied()
    };
    assert_eq!(posts(201), Some(1.0));
    assert_eq!(posts(429), Some(1.0));
    assert_eq!(posts(403), Some(1.0));
    assert_eq!(
        m.get(r#"nudge_http_refusals_total{status="429",code="rate_limited"}"#),
        Some(&1.0)
    );
    assert_eq!(
        m.get(r#"nudge_http_refusals_total{status="403",code="cross_origin_write"}"#),
        Some(&1.0)
    );
}

/// The real binary, its log in a file, killed on drop.
struct Logged {
    child: std::process::Child,
    base: String,
    log: tempfile::NamedTempFile,
    _data: tempfile::TempDir,
}

impl Drop for Logged {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn refusals_are_logged_with_their_code() {
    let data = tempfile::tempdir().unwrap();
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_nudge"));
    command
        .args(["--bind", "127.0.0.1:0", "--www-dir"])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../www"))
        .arg("--data-dir")
        .arg(data.path())
        .args(["--write-rate-per-address", "1", "--write-burst", "1"])
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(log.reopen().unwrap());
    let (child, base) = crate::process_common::spawn(&mut command);
    let server = Logged {
        child,
        base,
        log,
        _data: data,
    };
    let client = reqwest::Client::new();
    let post = |origin: Option<&'static str>| {
        let mut request = client
            .post(format!("{}/api/rooms/general/messages", server.base))
            .json(&serde_json::json!({ "author": "ann", "text": "hi" }));
        if let Some(origin) = origin {
            request = request.header("Origin", origin);
        }
        request.send()
    };
    assert_eq!(post(None).await.unwrap().status(), 201);
    assert_eq!(post(None).await.unwrap().status(), 429);
    assert_eq!(
        post(Some("https://evil.example")).await.unwrap().status(),
        403
    );
    let refused = |text: &str, status: &str, code: &str| {
        text.lines()
            .any(|l| l.contains(&format!("status={status}")) && l.contains(code))
    };
    let what = "both refusals logged";
    crate::wait::wait_until(std::time::Duration::from_secs(10), what, || {
        let text = std::fs::read_to_string(server.log.path()).unwrap_or_default();
        async move {
            refused(&text, "429", "rate_limited") && refused(&text, "403", "cross_origin_write")
        }
    })
    .await;
}
