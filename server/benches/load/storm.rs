//! A reconnect storm beside the same number of fresh connects: `make bench BENCH=resume`.
//!
//! One nudge process gets a large log (posts spread over many rooms). Then thousands of
//! streams open at once, each on one room; in the storm each resumes with a `Last-Event-ID`
//! spread evenly over the log, so the server reads (or refuses, past the replay cap) what each
//! missed before it answers. Fresh connects open the same streams without an id. A reader
//! meanwhile fetches a room's recent messages in a loop: its latency is what every other client
//! feels. `NUDGE_BENCH_STORM_STREAMS` and `NUDGE_BENCH_LOG_EVENTS` change the scale.

use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::client::Stats;
use crate::process::ServerProcess;

/// Streams opened at once, per row.
const STREAMS: [usize; 2] = [1_000, 5_000];
/// Events in the log before the storm.
const LOG_EVENTS: usize = 30_000;
/// Rooms the log's events are spread over (each stream subscribes to one).
const ROOMS: usize = 100;
/// Concurrent writers filling the log.
const FILLERS: usize = 64;

fn scale(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs the section: one row per stream count.
pub async fn run(client: &reqwest::Client) -> anyhow::Result<()> {
    let events = scale("NUDGE_BENCH_LOG_EVENTS", LOG_EVENTS);
    let streams: Vec<usize> = match std::env::var("NUDGE_BENCH_STORM_STREAMS") {
        Ok(v) => vec![v.parse().context("NUDGE_BENCH_STORM_STREAMS")?],
        Err(_) => STREAMS.to_vec(),
    };
    println!(
        "\n## Reconnect storm: streams opening at once, resuming from ids spread over a {events}-event log ({ROOMS} rooms), beside fresh connects\n"
    );
    println!("Open: request to response head (the replay is read before it); reads: `GET /api/rooms/r0/recent` in a loop meanwhile. Milliseconds, p50 / p99 / max.\n");
    println!("| streams | resume: open | fresh: open | resume: reads | fresh: reads | open p99 ratio | reads p99 ratio |");
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for count in streams {
        let server = ServerProcess::nudge()?;
        let (first, head) = fill(client, &server.base, events).await?;
        let resume = storm(client, &server.base, count, Some((first, head))).await?;
        drop(resume.streams);
        let fresh = storm(client, &server.base, count, None).await?;
        drop(fresh.streams);
        drop(server);
        println!(
            "| {count} | {} | {} | {} | {} | {:.2}× | {:.2}× |",
            crate::fmt_stats(&resume.open),
            crate::fmt_stats(&fresh.open),
            crate::fmt_stats(&resume.reads),
            crate::fmt_stats(&fresh.reads),
            resume.open.p99 / fresh.open.p99,
            resume.reads.p99 / fresh.reads.p99,
        );
    }
    Ok(())
}

/// Posts `events` messages over [`ROOMS`] rooms; returns the first and the last event id.
async fn fill(client: &reqwest::Client, base: &str, events: usize) -> anyhow::Result<(i64, i64)> {
    let tasks: Vec<_> = (0..FILLERS)
        .map(|w| {
            let (client, base) = (client.clone(), base.to_owned());
            tokio::spawn(async move {
                let (mut low, mut high) = (i64::MAX, 0);
                for i in (w..events).step_by(FILLERS) {
                    let response = client
                        .post(format!("{base}/api/rooms/r{}/messages", i % ROOMS))
                        .json(&json!({ "author": "bench", "text": format!("message {i}") }))
                        .send()
                        .await?;
                    anyhow::ensure!(response.status() == 201, "status {}", response.status());
                    let id = response.json::<serde_json::Value>().await?["event_id"]
                        .as_i64()
                        .context("event_id")?;
                    (low, high) = (low.min(id), high.max(id));
                }
                Ok::<_, anyhow::Error>((low, high))
            })
        })
        .collect();
    let (mut first, mut head) = (i64::MAX, 0);
    for task in tasks {
        let (low, high) = task.await??;
        (first, head) = (first.min(low), head.max(high));
    }
    Ok((first, head))
}

struct Storm {
    open: Stats,
    reads: Stats,
    streams: Vec<TcpStream>,
}

/// Opens `count` streams at once (resuming from ids spread over `log` when given) while a
/// reader loops; waits for every response head.
async fn storm(
    client: &reqwest::Client,
    base: &str,
    count: usize,
    log: Option<(i64, i64)>,
) -> anyhow::Result<Storm> {
    let addr = base.trim_start_matches("http://").to_owned();
    let (stop, stopped) = watch::channel(false);
    let reader = tokio::spawn(read_loop(client.clone(), base.to_owned(), stopped));
    let opens: Vec<_> = (0..count)
        .map(|i| {
            let addr = addr.clone();
            let resume_from =
                log.map(|(first, head)| first + (head - first) * i as i64 / count as i64);
            tokio::spawn(async move { open(&addr, i % ROOMS, resume_from).await })
        })
        .collect();
    let mut times = Vec::with_capacity(count);
    let mut streams = Vec::with_capacity(count);
    for task in opens {
        let (stream, took) = task.await??;
        times.push(took);
        streams.push(stream);
    }
    stop.send(true)?;
    let reads = reader.await??;
    Ok(Storm {
        open: stats(times),
        reads: stats(reads),
        streams,
    })
}

/// Opens one stream on room `room`; returns it and the time to its response head (a resume's
/// replay is read before the head is sent).
async fn open(
    addr: &str,
    room: usize,
    resume_from: Option<i64>,
) -> anyhow::Result<(TcpStream, f64)> {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).await?;
    let last_event_id = resume_from
        .map(|id| format!("Last-Event-ID: {id}\r\n"))
        .unwrap_or_default();
    stream
        .write_all(
            format!(
                "GET /api/events?topic=rooms/r{room} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n{last_event_id}\r\n"
            )
            .as_bytes(),
        )
        .await?;
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(60), stream.read(&mut buf))
            .await
            .context("a stream answers within 60 s")??;
        anyhow::ensure!(n > 0, "closed: {}", String::from_utf8_lossy(&received));
        received.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&received);
        if !text.contains("\r\n\r\n") {
            continue;
        }
        anyhow::ensure!(text.starts_with("HTTP/1.1 200"), "not a stream: {text}");
        return Ok((stream, started.elapsed().as_secs_f64() * 1000.0));
    }
}

/// Fetches a room's recent messages one after another until told to stop; returns each
/// fetch's latency in milliseconds.
async fn read_loop(
    client: reqwest::Client,
    base: String,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<Vec<f64>> {
    let mut latencies = Vec::new();
    while !*stop.borrow_and_update() {
        let started = Instant::now();
        let response = client
            .get(format!("{base}/api/rooms/r0/recent"))
            .send()
            .await?;
        anyhow::ensure!(response.status() == 200, "status {}", response.status());
        response.bytes().await?;
        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(latencies)
}

fn stats(mut values: Vec<f64>) -> Stats {
    values.sort_by(f64::total_cmp);
    if values.is_empty() {
        return Stats {
            p50: 0.0,
            p99: 0.0,
            max: 0.0,
        };
    }
    let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
    Stats {
        p50: at(0.50),
        p99: at(0.99),
        max: at(1.0),
    }
}
