//! The one load client used against nudge and the baselines alike.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// Latency percentiles in milliseconds.
pub struct Stats {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

impl Stats {
    /// Each figure's median over `rounds` (taken figure by figure).
    pub fn median(rounds: &[Stats]) -> Stats {
        let median = |pick: fn(&Stats) -> f64| {
            let mut values: Vec<f64> = rounds.iter().map(pick).collect();
            values.sort_by(f64::total_cmp);
            values[values.len() / 2]
        };
        Stats {
            p50: median(|s| s.p50),
            p99: median(|s| s.p99),
            max: median(|s| s.max),
        }
    }
}

async fn post(client: &reqwest::Client, base: &str, n: u64) -> anyhow::Result<Value> {
    let response = client
        .post(format!("{base}/api/rooms/bench/messages"))
        .json(&json!({ "author": "bench", "text": format!("message {n}") }))
        .send()
        .await?;
    anyhow::ensure!(response.status() == 201, "status {}", response.status());
    Ok(response.json().await?)
}

/// One message POSTed to `rooms/bench`, answered 201.
pub async fn post_once(client: &reqwest::Client, base: &str, n: u64) -> anyhow::Result<()> {
    post(client, base, n).await.map(drop)
}

/// Completed POSTs per second with `writers` concurrent loops, after a short warm-up.
pub async fn durable_writes(
    client: &reqwest::Client,
    base: &str,
    writers: usize,
    secs: f64,
) -> anyhow::Result<f64> {
    let done = Arc::new(AtomicU64::new(0));
    let warmup = Duration::from_millis(500);
    let start = Instant::now();
    let measure_from = start + warmup;
    let end = measure_from + Duration::from_secs_f64(secs);
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let (client, base, done) = (client.clone(), base.to_owned(), done.clone());
            tokio::spawn(async move {
                let mut n = (w as u64) << 32;
                loop {
                    let now = Instant::now();
                    if now >= end {
                        return Ok::<_, anyhow::Error>(());
                    }
                    post(&client, &base, n).await?;
                    n += 1;
                    if now >= measure_from {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / secs)
}

/// Open event streams, each already past its response headers.
pub struct Subscribers(Vec<TcpStream>);

/// Opens `n` event streams on `rooms/bench`, a few hundred at a time.
pub async fn open_subscribers(base: &str, n: usize) -> anyhow::Result<Subscribers> {
    let addr = base.trim_start_matches("http://").to_owned();
    let mut streams = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(250) {
        let opened =
            futures_util::future::try_join_all(chunk.iter().map(|_| open_one(&addr))).await?;
        streams.extend(opened);
    }
    Ok(Subscribers(streams))
}

async fn open_one(addr: &str) -> anyhow::Result<TcpStream> {
    let mut stream = TcpStream::connect(addr).await?;
    stream
        .write_all(format!("GET /api/events?topic=rooms/bench HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n").as_bytes())
        .await?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        anyhow::ensure!(stream.read(&mut byte).await? == 1, "closed before headers");
        head.push(byte[0]);
    }
    anyhow::ensure!(
        head.starts_with(b"HTTP/1.1 200"),
        "not a stream: {}",
        String::from_utf8_lossy(&head)
    );
    Ok(stream)
}

/// Posts `rounds` messages one after another; for each, waits until every subscriber has
/// read its frame, and measures from just before the POST to each read.
pub async fn latency_rounds(
    client: &reqwest::Client,
    base: &str,
    subscribers: Subscribers,
    rounds: usize,
) -> anyhow::Result<Stats> {
    let count = subscribers.0.len();
    let (tx, mut rx) = mpsc::unbounded_channel::<(i64, Instant)>();
    let readers: Vec<_> = subscribers
        .0
        .into_iter()
        .map(|stream| tokio::spawn(read_ids(stream, tx.clone())))
        .collect();
    drop(tx);

    let mut latencies = Vec::with_capacity(count * rounds);
    for round in 0..=rounds {
        let t0 = Instant::now();
        let posted = post(client, base, round as u64).await?;
        let id = posted["event_id"].as_i64().context("event_id")?;
        let mut got = 0;
        while got < count {
            let (seen, at) = tokio::time::timeout(Duration::from_secs(30), rx.recv())
                .await
                .context("every subscriber gets the event within 30 s")?
                .context("readers alive")?;
            if seen == id {
                // Round 0 warms up (the room is created, caches fill) and is not counted.
                if round > 0 {
                    latencies.push(at.duration_since(t0).as_secs_f64() * 1000.0);
                }
                got += 1;
            }
        }
    }
    for reader in readers {
        reader.abort();
    }
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    Ok(Stats {
        p50: at(0.50),
        p99: at(0.99),
        max: at(1.0),
    })
}

/// Reports the id of every event frame as it is read.
async fn read_ids(mut stream: TcpStream, tx: mpsc::UnboundedSender<(i64, Instant)>) {
    let mut buf = vec![0u8; 4096];
    let mut carry = String::new();
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let at = Instant::now();
        carry.push_str(&String::from_utf8_lossy(&buf[..n]));
        while let Some(end) = carry.find('\n') {
            if let Some(id) = carry[..end]
                .strip_prefix("id: ")
                .and_then(|v| v.trim().parse().ok())
            {
                if tx.send((id, at)).is_err() {
                    return;
                }
            }
            carry.drain(..=end);
        }
    }
}
