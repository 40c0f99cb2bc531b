//! A connection handed to actix-web after its first bytes were read: those bytes are read again
//! first, so the HTTP/1 dispatcher sees the connection exactly as it arrived.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A TCP connection with bytes already read from it put back in front.
pub struct Replayed {
    unread: Bytes,
    io: TcpStream,
}

impl Replayed {
    /// `io`, whose reads start with `unread`.
    pub fn new(unread: Bytes, io: TcpStream) -> Self {
        Self { unread, io }
    }

    /// The socket, for socket options.
    pub fn tcp(&self) -> &TcpStream {
        &self.io
    }
}

impl AsyncRead for Replayed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.unread.is_empty() {
            return Pin::new(&mut self.io).poll_read(cx, buf);
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
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
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
        let mut replayed = Replayed::new(Bytes::from_static(b"first "), server);
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
}
