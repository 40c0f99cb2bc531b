//! Connections dedicated to one event stream (served outside actix-web's dispatcher) look the
//! same from outside as streams served by actix-web's route: same headers, counted, logged;
//! and everything the dedicated path does not take reaches actix-web intact.

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{spawn_app, spawn_app_with, StreamPath, TestApp};
use crate::wait::wait_until;

/// The headers of a stream's response that are about the stream, not about its connection.
fn stream_headers(response: &reqwest::Response) -> Vec<(String, String)> {
    let mut headers: Vec<_> = response
        .headers()
        .iter()
        .filter(|(name, _)| !["date", "connection", "transfer-encoding"].contains(&name.as_str()))
        .map(|(name, value)| (name.to_string(), value.to_str().unwrap().to_owned()))
        .collect();
    headers.sort();
    headers
}

#[tokio::test]
async fn both_paths_answer_a_stream_with_the_same_headers() {
    let dedicated = spawn_app().await.streams_over(StreamPath::Dedicated);
    let shared = spawn_app().await.streams_over(StreamPath::Shared);
    let query = "topic=rooms/general";
    let from_dedicated = dedicated.stream_request(query, None, None).await;
    let from_shared = shared.stream_request(query, None, None).await;
    assert_eq!(from_dedicated.status(), 200);
    assert_eq!(from_shared.status(), 200);
    let headers = stream_headers(&from_dedicated);
    assert!(
        headers.iter().any(|(n, _)| n == "content-security-policy"),
        "security headers: {headers:?}"
    );
    assert_eq!(headers, stream_headers(&from_shared));
}

#[tokio::test]
async fn a_dedicated_stream_is_counted_and_logged_like_any_response() {
    let app = spawn_app_with(|c| c.connection_log = 16).await;
    let _dedicated = app.subscribe("topic=rooms/general", None).await;
    let app = app.streams_over(StreamPath::Shared);
    let _shared = app.subscribe("topic=rooms/general", None).await;

    let metrics = app.get("/metrics").await.text().await.unwrap();
    let counted =
        "nudge_http_responses_total{method=\"GET\",route=\"/api/events\",status=\"200\"} 2";
    assert!(metrics.lines().any(|l| l == counted), "{metrics}");

    let connections: Value = app.get_json("/debug/connections").await;
    let carried: Vec<Vec<&str>> = connections["connections"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["version"] == "HTTP/1.1")
        .map(|c| {
            c["requests"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_str().unwrap())
                .collect()
        })
        .collect();
    let stream = "GET /api/events?topic=rooms/general";
    assert!(carried.contains(&vec![stream]), "{carried:?}");
    assert!(
        carried.contains(&vec!["GET /healthz", stream]),
        "{carried:?}"
    );
}

#[tokio::test]
async fn a_client_that_sends_more_after_its_stream_request_is_let_go() {
    let app = spawn_app().await;
    let mut socket = raw_stream(&app, "topic=rooms/general").await;
    let mut head = [0u8; 12];
    socket.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    assert_eq!(app.hub.subscriber_count(), 1);

    // A stream's connection carries nothing after its request: the server closes it.
    socket
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let rest = read_to_end(socket).await;
    assert!(!rest.contains("HTTP/1.1"), "no second response: {rest}");
    let hub = app.hub.clone();
    wait_until(Duration::from_secs(5), "the hub let the stream go", || {
        let hub = hub.clone();
        async move { hub.subscriber_count() == 0 }
    })
    .await;
}

#[tokio::test]
async fn a_cross_origin_stream_goes_to_actix_web_and_gets_its_cors_headers() {
    let app = spawn_app_with(|c| c.cors_origins = vec!["https://app.example".into()]).await;
    let response = reqwest::Client::new()
        .get(app.url("/api/events?topic=rooms/general"))
        .header("Origin", "https://app.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    assert!(!response.headers().contains_key("connection"));
}

#[tokio::test]
async fn a_refused_stream_on_a_new_connection_gets_actix_webs_json_error() {
    let app = spawn_app().await;
    let response = app
        .stream_request("topic=Not%20A%20Topic", None, None)
        .await;
    crate::helpers::assert_error(response, 400, "invalid_topic").await;
    let socket = raw_stream(&app, "lastEventId=1").await;
    let text = read_to_end(socket).await;
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(text.contains("content-security-policy"), "{text}");
    assert_eq!(app.hub.subscriber_count(), 0);
}

/// A raw connection whose first request opens a stream on `query`.
async fn raw_stream(app: &TestApp, query: &str) -> TcpStream {
    let mut socket = TcpStream::connect(app.base.trim_start_matches("http://"))
        .await
        .unwrap();
    let request =
        format!("GET /api/events?{query} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    socket.write_all(request.as_bytes()).await.unwrap();
    socket
}

/// Everything the server sends until it closes the connection (a reset counts as a close).
async fn read_to_end(mut socket: TcpStream) -> String {
    let mut bytes = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), socket.read_to_end(&mut bytes));
    match read
        .await
        .expect("the server closed the connection within 10 s")
    {
        Ok(_) => {}
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
    }
    String::from_utf8_lossy(&bytes).into_owned()
}
