//! `/metrics` is Prometheus text and counts what operators need.

use std::collections::HashMap;

use crate::helpers::spawn_app;

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
    assert_eq!(m.get("nudge_events_published_total"), Some(&1.0));
    assert_eq!(m.get("nudge_write_duration_seconds_count"), Some(&1.0));
    assert_eq!(m.get("nudge_store_errors_total"), Some(&0.0));
}
