//! Clients that are slow on purpose cannot hold what they took: a stream whose client never
//! reads gives its slot back when it overflows, and ends when its writes stall for the write
//! deadline, on both stream paths; a request head has one deadline in all, whichever path ends
//! up serving it; and the test client's own waits end.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::time::Instant;

use crate::helpers::{spawn_app_with, StreamPath, TestApp};
use crate::wait::wait_until;

over_both_paths! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)] never_reading_clients_give_their_slots_back_when_they_overflow;
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)] a_stream_whose_writes_stall_ends_at_the_write_deadline;
}

/// A stream on `topic` from a raw socket with a tiny receive buffer that is never read. Over
/// the shared path, the stream request is pipelined after another request, so actix-web's
/// route serves it.
pub fn never_reading_stream(base: &str, path: StreamPath, topic: &str) -> std::net::TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let addr: SocketAddr = base.trim_start_matches("http://").parse().unwrap();
    socket.connect(&addr.into()).unwrap();
    let mut slow: std::net::TcpStream = socket.into();
    if path == StreamPath::Shared {
        write!(slow, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    }
    write!(
        slow,
        "GET /api/events?topic={topic} HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    .unwrap();
    slow
}

/// Posts to `room` from 8 tasks until `done` holds, failing after `within` in all.
async fn flood_until(app: &Arc<TestApp>, room: &str, within: Duration, done: impl Fn() -> bool) {
    let deadline = Instant::now() + within;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let (app, stop, room) = (app.clone(), stop.clone(), room.to_owned());
            tokio::spawn(async move {
                let mut i = 0;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) && Instant::now() < deadline {
                    app.post_ok(&room, &format!("{w}-{i}")).await;
                    i += 1;
                }
            })
        })
        .collect();
    while !done() {
        assert!(
            Instant::now() < deadline,
            "not done within {within:?} of flooding"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for writer in writers {
        writer.await.unwrap();
    }
}

/// The `nudge_event_streams_open` gauge.
async fn streams_open(app: &TestApp) -> f64 {
    let text = app.get("/metrics").await.text().await.unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix("nudge_event_streams_open "))
        .expect("the gauge is exposed")
        .trim()
        .parse()
        .unwrap()
}

/// With two streams allowed per address, two clients that never read take both; a flood
/// overflows them, and the address may open a stream again at once, while their writes are
/// still blocked; the gauge of open streams agrees.
async fn never_reading_clients_give_their_slots_back_when_they_overflow(path: StreamPath) {
    let app = Arc::new(
        spawn_app_with(|c| {
            c.max_streams_per_address = 2;
            // Far more than a commit batch: only a stream whose writes are blocked overflows.
            c.subscriber_buffer = 256;
            c.send_buffer_bytes = 4096;
        })
        .await
        .streams_over(path),
    );
    let _slow: Vec<_> = (0..2)
        .map(|_| never_reading_stream(&app.base, path, "rooms/flood"))
        .collect();
    wait_until(
        Duration::from_secs(5),
        "both slow streams subscribed",
        || {
            let hub = app.hub.clone();
            async move { hub.subscriber_count() == 2 }
        },
    )
    .await;
    let refused = app.stream_request("topic=rooms/flood", None, None).await;
    assert_eq!(refused.status(), 429, "both slots are taken");

    let hub = app.hub.clone();
    flood_until(&app, "flood", Duration::from_secs(60), move || {
        hub.subscriber_count() == 0
    })
    .await;

    // Promptly: within a few seconds of the overflow, not after a write deadline.
    let overflowed = Instant::now();
    let third = loop {
        let response = app.stream_request("topic=rooms/flood", None, None).await;
        if response.status() == 200 {
            break response;
        }
        assert!(
            overflowed.elapsed() < Duration::from_secs(3),
            "a new stream is still refused ({}) after the others overflowed",
            response.status()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        streams_open(&app).await,
        1.0,
        "the gauge counts the new stream only"
    );
    drop(third);
}

/// A client that never reads, and too few events to overflow its buffer: its stream ends once
/// a write has made no progress for the write deadline.
async fn a_stream_whose_writes_stall_ends_at_the_write_deadline(path: StreamPath) {
    let app = Arc::new(
        spawn_app_with(|c| {
            c.write_timeout_secs = 1;
            c.send_buffer_bytes = 4096;
            // No flood this test makes can fill it.
            c.subscriber_buffer = 1 << 20;
        })
        .await
        .streams_over(path),
    );
    let _slow = never_reading_stream(&app.base, path, "rooms/stall");
    wait_until(
        Duration::from_secs(5),
        "the stalled stream subscribed",
        || {
            let hub = app.hub.clone();
            async move { hub.subscriber_count() == 1 }
        },
    )
    .await;
    // Far more than the socket buffers hold, far less than the subscriber's buffer.
    let hub = app.hub.clone();
    flood_until(&app, "stall", Duration::from_secs(30), move || {
        hub.subscriber_count() == 0
    })
    .await;
    assert!(
        app.hub.published_total() < 1 << 20,
        "ended by the deadline, not by an overflow"
    );
}

/// A head that starts like a stream request and never ends, and one that starts late and is
/// not a stream request, are each answered 408 once the first deadline (5 s) has passed, not
/// held for a second one.
#[tokio::test]
async fn a_slow_head_has_one_deadline_in_all() {
    let app = spawn_app_with(|_| {}).await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let slow_head = |first: &'static [u8], pause: Duration| {
        let addr = addr.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let mut io = tokio::net::TcpStream::connect(&addr).await.unwrap();
            tokio::time::sleep(pause).await;
            tokio::io::AsyncWriteExt::write_all(&mut io, first)
                .await
                .unwrap();
            let mut answer = Vec::new();
            let read = tokio::time::timeout(Duration::from_secs(20), io.read_to_end(&mut answer));
            read.await.expect("the connection ends").unwrap();
            (
                started.elapsed(),
                String::from_utf8_lossy(&answer).into_owned(),
            )
        })
    };
    let stream_like = slow_head(
        b"GET /api/events?topic=rooms/general HTTP/1.1\r\nHost: x\r\n",
        Duration::ZERO,
    );
    let late = slow_head(
        b"POST /api/rooms/general/messages HTTP/1.1\r\n",
        Duration::from_secs(4),
    );
    for (which, head) in [("stream-like", stream_like), ("late", late)] {
        let (took, answer) = head.await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 408"), "{which}: {answer:?}");
        assert!(
            took >= Duration::from_millis(4500) && took < Duration::from_millis(7500),
            "{which} head answered after {took:?}"
        );
    }
}

/// The test client's waits have a deadline on the whole wait: a stream that only ever sends
/// heartbeats fails `next_event` instead of keeping it waiting.
#[tokio::test]
async fn the_test_client_fails_a_wait_that_heartbeats_fill() {
    let app = spawn_app_with(|c| c.heartbeat_secs = 1).await;
    let mut stream = app.subscribe("topic=rooms/quiet", None).await;
    let waiting =
        tokio::spawn(async move { stream.next_event_within(Duration::from_millis(2500)).await });
    let outcome = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("the wait ended by itself");
    assert!(outcome.expect_err("no event came").is_panic());
}
