//! Connections dedicated to one event stream, served outside actix-web's HTTP/1 dispatcher.
//!
//! Why: an open event stream is mostly idle, and a server holds thousands of them. actix-http
//! gives every HTTP/1 connection an 8 KB read buffer and an 8 KB write buffer for as long as it
//! lives, which made an idle subscriber cost about 16 KB of resident memory; served here it
//! costs a few KB (`make bench BENCH=memory`, BENCHMARKS.md).
//!
//! How: every new plain-HTTP connection starts here ([`claim`]). Its first bytes are read;
//! when they make a complete `GET /api/events…` head with nothing unusual about it
//! (`head::parse`) and [`open_stream`] accepts the request, the connection is this stream's
//! alone: the response head says `Connection: close`, the frames go out in chunked encoding as
//! they come, and the connection closes when the stream ends (shutdown, overflow, revocation)
//! or the client goes. Everything else — any other request, a stream that would be refused
//! with a 4xx, a cross-origin stream — goes to actix-web with its head put back
//! ([`Replayed`]), so every error and every other case has exactly one implementation, behind
//! the whole middleware stack. The one exception is a first head that does not arrive in time:
//! it is answered 408 here, as actix-web answers it, so that it has one deadline in all.
//!
//! Every write has a deadline (a client that stops reading cannot hold its connection), and a
//! stream ends when its subscription overflows or the server shuts down even while a write is
//! blocked, giving its slot back at once ([`crate::sse::StreamWatch`]).
//!
//! A browser that opens its stream on a connection already used for other requests is served
//! by actix-web's own route: the two paths send the same headers and the same frames (the API
//! tests run the event-stream suite over both).

mod head;
#[cfg(test)]
mod head_props;
mod replayed;

use std::convert::Infallible;
use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::pin::pin;
use std::time::{Duration, Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub use replayed::{ConnectionKill, Replayed};

use crate::audience::Credentials;
use crate::metrics::{log_response, ResponseLabels};
use crate::security::SECURITY_HEADERS;
use crate::sse::{event_stream, StreamPlan, StreamWatch, OVERFLOW_GRACE};
use crate::stream::{open_stream, StreamRequest, EVENT_STREAM_HEADERS};
use crate::Nudge;
use head::Parsed;

/// How long a new connection may take to send its first request head before it is answered
/// 408 (actix-web's own request timeout, which it then does not apply a second time).
const FIRST_REQUEST_WAIT: Duration = Duration::from_secs(5);
/// The longest first request head read here; a longer one goes to actix-web.
const MAX_HEAD_BYTES: usize = 16 * 1024;
/// The first read's buffer: a browser's stream request with its cookies fits.
const FIRST_READ_BYTES: usize = 2048;

/// What became of a new connection.
pub enum Claim {
    /// An accepted stream request: serve it with [`ClaimedStream::serve`].
    Stream(ClaimedStream),
    /// For actix-web, with what was read put back.
    Dispatch(Replayed),
    /// The connection failed, or the server is shutting down.
    Gone,
}

/// A connection whose stream is subscribed and ready to be served.
pub struct ClaimedStream {
    io: TcpStream,
    plan: StreamPlan,
    target: String,
    started: Instant,
}

/// Reads the start of a new connection and keeps it when it opens a stream [`open_stream`]
/// accepts.
///
/// The head is read here until it is complete, whatever the request, so that a head has one
/// deadline in all: one that does not arrive in time is answered `408` here, as actix-web
/// answers it, rather than handed to actix-web for a deadline of its own.
pub async fn claim(mut io: TcpStream, state: &Nudge) -> Claim {
    let deadline = tokio::time::Instant::now() + FIRST_REQUEST_WAIT;
    let write_timeout = state.settings().write_timeout;
    let path = state.settings().stream_path.as_str();
    let dispatch =
        |read: BytesMut, io| Claim::Dispatch(Replayed::new(read.freeze(), io, write_timeout));
    let shutdown = state.hub().shutdown_token();
    let mut read = BytesMut::with_capacity(FIRST_READ_BYTES);
    let head = loop {
        match head::parse(&read, path) {
            Parsed::Stream(head) => break head,
            Parsed::Partial if read.len() < MAX_HEAD_BYTES => {}
            Parsed::Partial | Parsed::Other => return dispatch(read, io),
        }
        if read.capacity() - read.len() < FIRST_READ_BYTES / 4 {
            read.reserve(FIRST_READ_BYTES);
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Claim::Gone,
            outcome = tokio::time::timeout_at(deadline, io.read_buf(&mut read)) => match outcome {
                // Closed: actix-web ends it the way it ends any such connection.
                Ok(Ok(0)) => return dispatch(read, io),
                Ok(Ok(_)) => {}
                Ok(Err(_)) => return Claim::Gone,
                Err(_) => {
                    request_timeout(&mut io, write_timeout).await;
                    return Claim::Gone;
                }
            },
        }
    };
    // Timed from here, as actix-web times a request from its parsed head.
    let started = Instant::now();
    let Ok(query) = serde_urlencoded::from_str(&head.query) else {
        return dispatch(read, io);
    };
    let peer = io.peer_addr().ok().map(|a| a.ip());
    let request = StreamRequest {
        query,
        last_event_id: head.last_event_id,
        credentials: Credentials {
            cookies: head.cookies,
        },
        client_ip: state
            .limits()
            .client_ip_of(head.forwarded_for.as_deref(), peer),
    };
    // Boxed: this future is the connection's for its whole life, and should not be as large
    // as the store reads of opening a stream.
    match Box::pin(open_stream(state, request)).await {
        Ok(plan) => Claim::Stream(ClaimedStream {
            io,
            plan,
            target: head.target,
            started,
        }),
        // Refused (or the store failed): actix-web opens it again and answers with the error.
        Err(_) => dispatch(read, io),
    }
}

/// What actix-web answers a request head that did not arrive in time (the same bytes), then
/// the connection closes.
async fn request_timeout(io: &mut TcpStream, write_timeout: Duration) {
    let response = format!(
        "HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\ndate: {}\r\n\r\n",
        httpdate::fmt_http_date(SystemTime::now())
    );
    let answer = async {
        io.write_all(response.as_bytes()).await?;
        io.shutdown().await
    };
    let _ = tokio::time::timeout(write_timeout, answer).await;
}

impl ClaimedStream {
    /// Logs and counts the response as actix-web would, then writes the stream until it ends
    /// or the client goes.
    pub async fn serve(self, state: &Nudge) {
        let Self {
            mut io,
            plan,
            target,
            started,
        } = self;
        // The route pattern actix-web reports for the same endpoint, so metrics add up.
        let route = state.settings().stream_path.as_str();
        let labels = ResponseLabels {
            method: "GET".to_owned(),
            route: route.to_owned(),
            status: 200,
        };
        log_response(&labels, route, started);
        state.metrics().count_response(&labels);
        if state.connections().enabled() {
            let id = state.connections().number();
            state
                .connections()
                .record(id.0, "HTTP/1.1".to_owned(), format!("GET {target}"));
        }
        drop((labels, target));
        // Frames are small and should leave at once.
        let _ = io.set_nodelay(true);
        let (body, watch) = event_stream(plan);
        if write_stream(&mut io, body, watch, state.settings().write_timeout)
            .await
            .is_ok()
        {
            let _ = io.shutdown().await;
        }
    }
}

/// The response head: the event-stream and security headers actix-web's route sends, chunked
/// encoding, and `Connection: close` (this connection carries this stream only).
fn response_head() -> String {
    let mut head = String::from("HTTP/1.1 200 OK\r\n");
    for (name, value) in EVENT_STREAM_HEADERS.iter().chain(SECURITY_HEADERS.iter()) {
        let _ = write!(head, "{name}: {value}\r\n");
    }
    let _ = write!(
        head,
        "date: {}\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n",
        httpdate::fmt_http_date(SystemTime::now())
    );
    head
}

/// Writes the response until the stream ends, the client goes, a write makes no progress for
/// `write_timeout`, or the watch says the stream must end: at shutdown at once, and after an
/// overflow once the `reset` had [`OVERFLOW_GRACE`] to leave (the slot is given back at once).
async fn write_stream(
    io: &mut TcpStream,
    body: impl Stream<Item = Result<Bytes, Infallible>>,
    mut watch: StreamWatch,
    write_timeout: Duration,
) -> io::Result<()> {
    let mut body = pin!(body);
    let mut probe = [0u8; 8];
    // Set at an overflow: the stream must be over by then.
    let mut grace: Option<tokio::time::Instant> = None;
    // The next bytes to write, and whether they end the response.
    let mut next = Some((response_head().into_bytes(), false));
    loop {
        if let Some((bytes, ended)) = next.take() {
            // Almost always the socket takes the frame at once: write it without arming a
            // deadline or waiting on the watch, which would cost every stream a timer and two
            // waker registrations per event.
            let sent = write_now(io, &bytes)?;
            if sent == bytes.len() {
                if ended {
                    return Ok(());
                }
                continue;
            }
            let mut write = pin!(io.write_all(&bytes[sent..]));
            loop {
                let mut deadline = tokio::time::Instant::now() + write_timeout;
                if let Some(grace) = grace {
                    deadline = deadline.min(grace);
                }
                // The write first: what can leave at once does (the last chunk at shutdown).
                tokio::select! {
                    biased;
                    written = tokio::time::timeout_at(deadline, &mut write) => {
                        written.map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
                        break;
                    }
                    _ = watch.shutdown() => return Ok(()),
                    _ = watch.overflowed(), if grace.is_none() => {
                        watch.release_slot();
                        grace = Some(tokio::time::Instant::now() + OVERFLOW_GRACE);
                    }
                }
            }
            if ended {
                return Ok(());
            }
        }
        // At shutdown the body ends itself, and its last chunk leaves if it can at once. An
        // overflow needs no branch here: the body answers it with the reset at once, and only
        // a blocked write (above) must watch for it.
        let frame = tokio::select! {
            biased;
            frame = body.next() => frame,
            ready = io.readable() => {
                ready?;
                match io.try_read(&mut probe) {
                    // The client closed, or sent what a stream's connection never carries.
                    Ok(_) => return Ok(()),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(e) => return Err(e),
                }
            }
        };
        next = match frame {
            Some(Ok(frame)) if frame.is_empty() => None,
            Some(Ok(frame)) => Some((chunk(&frame), false)),
            None => Some((b"0\r\n\r\n".to_vec(), true)),
        };
    }
}

/// Writes what the socket takes without waiting; returns how much that was.
fn write_now(io: &TcpStream, bytes: &[u8]) -> io::Result<usize> {
    let mut sent = 0;
    while sent < bytes.len() {
        match io.try_write(&bytes[sent..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => return Err(e),
        }
    }
    Ok(sent)
}

/// One frame in chunked encoding, in one buffer so that it leaves in one write.
fn chunk(frame: &[u8]) -> Vec<u8> {
    let mut chunk = Vec::with_capacity(frame.len() + 12);
    let _ = write!(chunk, "{:x}\r\n", frame.len());
    chunk.extend_from_slice(frame);
    chunk.extend_from_slice(b"\r\n");
    chunk
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_is_its_hex_length_the_frame_and_crlf() {
        assert_eq!(chunk(b": keep-alive\n\n"), b"e\r\n: keep-alive\n\n\r\n");
        let long = vec![b'x'; 300];
        assert!(chunk(&long).starts_with(b"12c\r\nxxx"));
    }

    #[test]
    fn the_head_carries_the_contract_and_security_headers() {
        let head = response_head();
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(head.ends_with("connection: close\r\n\r\n"));
        for (name, value) in EVENT_STREAM_HEADERS.iter().chain(SECURITY_HEADERS.iter()) {
            assert!(head.contains(&format!("\r\n{name}: {value}\r\n")), "{name}");
        }
    }
}
