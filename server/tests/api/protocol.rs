//! Requests only a raw TCP client can send: bodies in chunks, lengths that lie, heads that
//! break HTTP. Whatever the app answers is the JSON error with the configured body limit; what
//! actix-http answers below the app (a head it cannot parse) is a bare status, and the
//! connection ends.

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{spawn_app_with, TestApp};

/// A response read off the wire.
struct Raw {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Raw {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}{:?}", self.head, self.body))
    }

    fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{}", self.head);
        assert!(
            self.head
                .to_ascii_lowercase()
                .contains("content-type: application/json"),
            "{}",
            self.head
        );
        assert_eq!(self.json()["error"]["code"], code);
    }
}

/// Sends `request` on a new connection and reads the first response: its head and as many body
/// bytes as `Content-Length` says (the server may close the connection right after).
async fn exchange(app: &TestApp, request: &[u8]) -> Raw {
    let addr = app.base.trim_start_matches("http://").to_owned();
    let work = async {
        let mut io = TcpStream::connect(addr).await.expect("connects");
        // The server may answer and close before it read everything: a failed write is fine.
        let _ = io.write_all(request).await;
        let mut read = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            if let Some(end) = read.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&read[..end]).into_owned();
                let length = head
                    .lines()
                    .find_map(|l| {
                        let (name, value) = l.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length")
                            .then(|| value.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                if read.len() >= end + 4 + length {
                    let status = head
                        .split(' ')
                        .nth(1)
                        .and_then(|s| s.parse().ok())
                        .unwrap_or_else(|| panic!("no status in {head:?}"));
                    let body = read[end + 4..end + 4 + length].to_vec();
                    return Raw { status, head, body };
                }
            }
            match io.read(&mut buf).await {
                Ok(0) | Err(_) => panic!("closed before a whole response: {read:?}"),
                Ok(n) => read.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), work)
        .await
        .expect("a response within 20 s")
}

async fn app() -> TestApp {
    spawn_app_with(|c| c.max_body_bytes = 1024).await
}

#[tokio::test]
async fn a_declared_length_over_the_limit_is_a_json_413_before_the_body() {
    let app = app().await;
    let response = exchange(
        &app,
        b"PUT /api/rooms/big HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Content-Length: 300000\r\n\r\n{",
    )
    .await;
    response.assert_error(413, "body_too_large");
    assert!(
        response.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("1024"),
        "names the configured limit"
    );
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_is_a_json_413() {
    let app = app().await;
    let chunk = " ".repeat(1000);
    let mut request =
        b"PUT /api/rooms/big HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Transfer-Encoding: chunked\r\n\r\n"
            .to_vec();
    for _ in 0..3 {
        request.extend_from_slice(format!("{:x}\r\n{chunk}\r\n", chunk.len()).as_bytes());
    }
    request.extend_from_slice(b"0\r\n\r\n");
    exchange(&app, &request)
        .await
        .assert_error(413, "body_too_large");
    let message = b"POST /api/rooms/general/messages HTTP/1.1\r\nHost: x\r\n\
          Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
    let mut request = message.to_vec();
    for _ in 0..3 {
        request.extend_from_slice(format!("{:x}\r\n{chunk}\r\n", chunk.len()).as_bytes());
    }
    request.extend_from_slice(b"0\r\n\r\n");
    exchange(&app, &request)
        .await
        .assert_error(413, "body_too_large");
}

#[tokio::test]
async fn a_broken_chunked_body_is_a_json_400() {
    let app = app().await;
    let response = exchange(
        &app,
        b"POST /api/rooms/general/messages HTTP/1.1\r\nHost: x\r\n\
          Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n\
          zz\r\n{}\r\n0\r\n\r\n",
    )
    .await;
    assert_eq!(response.status, 400, "{}", response.head);
    assert_eq!(response.json()["error"]["code"], "invalid_body");
}

/// Heads actix-http cannot parse never reach the app: it answers a bare status (no body, so no
/// JSON) and closes. These pin that behaviour, so that a change to it is seen.
#[tokio::test]
async fn heads_that_break_http_get_a_bare_4xx_from_below_the_app() {
    let app = app().await;
    let bad_line = exchange(&app, b"GET /a b c HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(bad_line.status, 400, "{}", bad_line.head);
    let mut many = b"GET /healthz HTTP/1.1\r\nHost: x\r\n".to_vec();
    for n in 0..200 {
        many.extend_from_slice(format!("X-H{n}: v\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    let too_many = exchange(&app, &many).await;
    assert_eq!(too_many.status, 431, "{}", too_many.head);
    let both_lengths = exchange(
        &app,
        b"POST /api/rooms/general/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\
          Content-Length: 3\r\n\r\n{}",
    )
    .await;
    assert_eq!(both_lengths.status, 400, "{}", both_lengths.head);
}
