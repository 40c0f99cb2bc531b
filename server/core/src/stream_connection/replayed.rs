//! A connection handed to actix-web after its first bytes were read: those bytes are read again
//! first, so the HTTP/1 dispatcher sees the connection exactly as it arrived.
//!
//! It also gives actix-web's connections what its dispatcher lacks for event streams: a write
//! that makes no progress for the write deadline fails (a client that never reads cannot hold
//! the connection), and a [`ConnectionKill`] that a stream on the connection cancels (overflow,
//! shutdown) makes every read and write fail at once, which ends the dispatcher even while it
//! waits on a blocked write.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// Ends a connection served by actix-web from outside its dispatcher; a stream served on the
/// connection finds it in the request's connection data.
#[derive(Clone, Debug, Default)]
pub struct ConnectionKill(pub CancellationToken);

/// A TCP connection with bytes already read from it put back in front.
pub struct Replayed {
    unread: Bytes,
    io: TcpStream,
    kill: ConnectionKill,
    /// Polled while a read or write waits, so that a kill wakes the dispatcher.
    killed: Option<Pin<Box<WaitForCancellationFutureOwned>>>,
    write_timeout: Duration,
    /// Armed when a write first finds the socket full; disarmed by any progress.
    stall: Option<Pin<Box<Sleep>>>,
    stalled: bool,
}

impl Replayed {
    /// `io`, whose reads start with `unread`; a write that makes no progress for
    /// `write_timeout` fails.
    pub fn new(unread: Bytes, io: TcpStream, write_timeout: Duration) -> Self {
        Self {
            unread,
            io,
            kill: ConnectionKill::default(),
            killed: None,
            write_timeout,
            stall: None,
            stalled: false,
        }
    }

    /// The socket, for socket options.
    pub fn tcp(&self) -> &TcpStream {
        &self.io
    }

    /// The switch that ends this connection.
    pub fn kill_switch(&self) -> ConnectionKill {
        self.kill.clone()
    }

    /// An error once the connection was killed; otherwise registers for the kill's wake-up.
    fn poll_killed(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let token = &self.kill.0;
        let killed = self
            .killed
            .get_or_insert_with(|| Box::pin(token.clone().cancelled_owned()));
        match killed.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::ErrorKind::ConnectionAborted.into())),
            Poll::Pending => Poll::Pending,
        }
    }

    /// An error once a write has waited for the write deadline; otherwise registers for it.
    fn poll_stall(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let deadline = Instant::now() + self.write_timeout;
        let stall = self
            .stall
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if !self.stalled {
            self.stalled = true;
            stall.as_mut().reset(deadline);
        }
        match stall.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::ErrorKind::TimedOut.into())),
            Poll::Pending => Poll::Pending,
        }
    }

    /// A write's outcome, with the deadline and the kill applied when it has to wait.
    fn after_write<T>(
        &mut self,
        cx: &mut Context<'_>,
        written: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match written {
            Poll::Pending => {
                if let Poll::Ready(Err(e)) = self.poll_killed(cx) {
                    return Poll::Ready(Err(e));
                }
                match self.poll_stall(cx) {
                    Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                    _ => Poll::Pending,
                }
            }
            done => {
                self.stalled = false;
                done
            }
        }
    }
}

impl AsyncRead for Replayed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.kill.0.is_cancelled() {
            return Poll::Ready(Err(io::ErrorKind::ConnectionAborted.into()));
        }
        if self.unread.is_empty() {
            return match Pin::new(&mut self.io).poll_read(cx, buf) {
                Poll::Pending => match self.poll_killed(cx) {
                    Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                    _ => Poll::Pending,
                },
                done => done,
            };
        }
        let n = self.unread.len().min(buf.remaining());
        buf.put_slice(&self.unread[..n]);
        self.unread.advance(n);
        if self.unread.is_empty() {
            // Let the buffer go now rather than with the connection.
            self.unread = Bytes::new();
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Replayed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.kill.0.is_cancelled() {
            return Poll::Ready(Err(io::ErrorKind::ConnectionAborted.into()));
        }
        let written = Pin::new(&mut self.io).poll_write(cx, buf);
        self.after_write(cx, written)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.kill.0.is_cancelled() {
            return Poll::Ready(Err(io::ErrorKind::ConnectionAborted.into()));
        }
        let written = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.after_write(cx, written)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn reads_the_put_back_bytes_then_the_socket_and_writes_through() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let mut replayed = Replayed::new(
            Bytes::from_static(b"first "),
            server,
            Duration::from_secs(5),
        );
        client.write_all(b"then the rest").await.unwrap();
        client.shutdown().await.unwrap();

        // A small buffer takes the put-back bytes in more than one read.
        let mut small = [0u8; 4];
        replayed.read_exact(&mut small).await.unwrap();
        assert_eq!(&small, b"firs");
        let mut rest = String::new();
        replayed.read_to_string(&mut rest).await.unwrap();
        assert_eq!(rest, "t then the rest");

        replayed.write_all(b"answer").await.unwrap();
        replayed.shutdown().await.unwrap();
        let mut answer = String::new();
        client.read_to_string(&mut answer).await.unwrap();
        assert_eq!(answer, "answer");
    }

    /// A connected pair: the client, and the server's end as a `Replayed`.
    async fn pair(write_timeout: Duration) -> (TcpStream, Replayed) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (client, Replayed::new(Bytes::new(), server, write_timeout))
    }

    #[tokio::test]
    async fn a_write_that_makes_no_progress_fails_at_the_deadline() {
        let (_client, mut replayed) = pair(Duration::from_millis(300)).await;
        let started = std::time::Instant::now();
        let chunk = vec![b'x'; 64 * 1024];
        let error = loop {
            if let Err(error) = replayed.write_all(&chunk).await {
                break error;
            }
            assert!(started.elapsed() < Duration::from_secs(10), "never blocked");
        };
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test]
    async fn the_kill_switch_fails_a_blocked_write_and_every_read_after() {
        let (_client, mut replayed) = pair(Duration::from_secs(60)).await;
        let kill = replayed.kill_switch();
        let writer = tokio::spawn(async move {
            let chunk = vec![b'x'; 64 * 1024];
            loop {
                if let Err(error) = replayed.write_all(&chunk).await {
                    return (error, replayed);
                }
            }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        kill.0.cancel();
        let (error, mut replayed) = tokio::time::timeout(Duration::from_secs(5), writer)
            .await
            .expect("the blocked write ends at once")
            .unwrap();
        assert_eq!(error.kind(), io::ErrorKind::ConnectionAborted);
        let mut byte = [0u8; 1];
        let read = replayed.read(&mut byte).await;
        assert_eq!(read.unwrap_err().kind(), io::ErrorKind::ConnectionAborted);
    }

    #[tokio::test]
    async fn the_kill_switch_wakes_a_waiting_read() {
        let (_client, mut replayed) = pair(Duration::from_secs(60)).await;
        let kill = replayed.kill_switch();
        let reader = tokio::spawn(async move {
            let mut byte = [0u8; 1];
            replayed.read(&mut byte).await
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        kill.0.cancel();
        let read = tokio::time::timeout(Duration::from_secs(5), reader)
            .await
            .expect("the waiting read ends at once")
            .unwrap();
        assert_eq!(read.unwrap_err().kind(), io::ErrorKind::ConnectionAborted);
    }
}
