//! A hand-written HTTP/1.1 client for one keep-alive connection: `GET /healthz`, read to its
//! end, then the stream request, on the same socket for certain. (A pooled client may open a
//! new connection when the first is not back in its pool yet, which under load served the
//! "shared connection" tests over a dedicated one.) The answer becomes a `reqwest::Response`,
//! so tests read it as any other.

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The connection, with what was read and not yet used.
struct Connection {
    io: TcpStream,
    read: BytesMut,
}

/// A response head: status, headers, and how its body is framed.
struct Head {
    status: u16,
    headers: Vec<(String, Vec<u8>)>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }
}

impl Connection {
    /// Reads more; false at the end of the connection.
    async fn fill(&mut self) -> bool {
        self.io.read_buf(&mut self.read).await.expect("read") > 0
    }

    async fn head(&mut self) -> Head {
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut response = httparse::Response::new(&mut headers);
            if let httparse::Status::Complete(len) =
                response.parse(&self.read).expect("a valid response head")
            {
                let head = Head {
                    status: response.code.expect("a status"),
                    headers: response
                        .headers
                        .iter()
                        .map(|h| (h.name.to_owned(), h.value.to_vec()))
                        .collect(),
                };
                self.read.advance(len);
                return head;
            }
            assert!(self.fill().await, "the connection closed inside a head");
        }
    }

    /// The next `n` bytes, or fewer at the end of the connection.
    async fn take(&mut self, n: usize) -> Bytes {
        while self.read.len() < n {
            if !self.fill().await {
                break;
            }
        }
        let n = n.min(self.read.len());
        self.read.split_to(n).freeze()
    }

    /// One line of a chunked body, without its CRLF; `None` at the end of the connection.
    async fn line(&mut self) -> Option<String> {
        loop {
            if let Some(end) = self.read.windows(2).position(|w| w == b"\r\n") {
                let line = self.read.split_to(end + 2);
                return Some(String::from_utf8_lossy(&line[..end]).into_owned());
            }
            if !self.fill().await {
                return None;
            }
        }
    }

    /// The next chunk of a chunked body; `None` after the last.
    async fn chunk(&mut self) -> Option<Bytes> {
        let size = self.line().await?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        if size == 0 {
            return None;
        }
        let data = self.take(size).await;
        self.line().await?;
        Some(data)
    }
}

/// Sends `GET /healthz`, reads its answer to the end, then sends `GET {target}` with `headers`
/// on the same connection and returns its answer.
pub async fn after_another_request(
    base: &str,
    target: &str,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let addr = base.trim_start_matches("http://");
    let io = TcpStream::connect(addr).await.expect("connect");
    let mut connection = Connection {
        io,
        read: BytesMut::new(),
    };
    let first = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    connection.io.write_all(first.as_bytes()).await.unwrap();
    let health = connection.head().await;
    assert_eq!(health.status, 200, "GET /healthz");
    let length = health
        .header("content-length")
        .and_then(|v| std::str::from_utf8(v).ok()?.parse().ok())
        .expect("/healthz has a length, so the connection can carry another request");
    connection.take(length).await;

    let mut second = format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\n");
    for (name, value) in headers {
        second.push_str(&format!("{name}: {value}\r\n"));
    }
    second.push_str("\r\n");
    connection.io.write_all(second.as_bytes()).await.unwrap();
    let head = connection.head().await;

    let chunked = head
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case(b"chunked"));
    let length: Option<usize> = head
        .header("content-length")
        .and_then(|v| std::str::from_utf8(v).ok()?.parse().ok());
    let body = futures_util::stream::unfold(Some(connection), move |connection| async move {
        let mut connection = connection?;
        let data = if chunked {
            connection.chunk().await?
        } else {
            let data = connection.take(length.unwrap_or(0)).await;
            return Some((Ok::<_, std::io::Error>(data), None));
        };
        Some((Ok(data), Some(connection)))
    });
    let mut response = http::Response::builder().status(head.status);
    for (name, value) in &head.headers {
        response = response.header(name.as_str(), value.as_slice());
    }
    response
        .body(reqwest::Body::wrap_stream(body))
        .expect("a valid response")
        .into()
}
