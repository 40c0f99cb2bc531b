//! The server benchmark: `make bench` (or `cargo bench -p watercooler --bench load`).
//!
//! Every figure is printed beside a baseline measured in the same run by the same load client,
//! because machines here are noisy and only ratios hold:
//! - durable messages per second at 1, 16 and 256 concurrent writers, beside a trivial
//!   actix-web handler that parses the same JSON, answers 201 and stores nothing (the ceiling);
//! - time from POST to delivery at 1,000 and 10,000 subscribers, beside a bare tokio broadcaster
//!   that writes the same event to the same number of sockets (the floor);
//! - resident memory per idle subscriber, beside the same floor and a plain actix-web stream;
//! - on PostgreSQL ([`postgres`]), durable writes and cross-node delivery beside SQLite's.
//!   `cargo bench -p watercooler --bench load -- postgres` runs that section alone;
//! - a reconnect storm ([`storm`]): thousands of streams resuming at once from ids spread over
//!   a large log, beside as many fresh connects, and the latency of reads meanwhile;
//! - Web Push ([`push`]): pushes per second to a local push service at 1,000 and 10,000
//!   subscriptions, and durable writes with 10,000 subscriptions beside none.
//!
//! Servers run as separate processes (a process may hold at most 20,000 open files, so 10,000
//! subscribers need the client and the server apart): `nudge` itself, and this binary re-run
//! with `--role ceiling` or `--role floor`.

mod baselines;
mod client;
mod machine;
mod postgres;
mod process;
mod push;
mod storm;

use client::{durable_writes, latency_rounds, open_subscribers, Stats};
use process::ServerProcess;

/// Writer counts for the throughput table.
const WRITERS: [usize; 3] = [1, 16, 256];
/// Subscriber counts for the latency table.
const SUBSCRIBERS: [usize; 2] = [1_000, 10_000];
/// How long each throughput point runs.
const WRITE_SECS: f64 = 3.0;
/// Rounds per throughput point, nudge and the ceiling alternating.
const WRITE_ROUNDS: usize = 3;
/// POSTs (or broadcasts) per latency point, after one warm-up round that is not counted.
const ROUNDS: usize = 50;
/// Latency points per server and size, servers alternating; the table shows their medians.
const DELIVERY_ROUNDS: usize = 5;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--role") {
        return baselines::serve(args.get(i + 1).map(String::as_str).unwrap_or(""));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    println!("# nudge server benchmark\n");
    println!("{}", machine::describe());
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(usize::MAX)
        .build()?;
    // `cargo bench … -- writes` (or `delivery`, `memory`, `postgres`, `resume`, `push`) runs only that
    // section.
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wanted = |section: &str| only.is_empty() || only.iter().any(|o| o == section);
    if wanted("writes") {
        writes(&client).await?;
    }
    if wanted("delivery") {
        delivery(&client).await?;
    }
    if wanted("memory") {
        memory().await?;
    }
    if wanted("postgres") {
        postgres::run(&client).await?;
    }
    if wanted("resume") {
        storm::run(&client).await?;
    }
    if wanted("push") {
        push::run(&client).await?;
    }
    Ok(())
}

/// Durable writes per second beside the ceiling. Each size runs [`WRITE_ROUNDS`] times, nudge
/// and the ceiling alternating, because one round's ratio moves by ±0.1 on these machines: the
/// table gives the medians, and every round's ratio.
async fn writes(client: &reqwest::Client) -> anyhow::Result<()> {
    println!("## Durable writes per second (POST /api/rooms/bench/messages)\n");
    println!(
        "| writers | nudge (SQLite, synchronous=FULL) | ceiling (parse JSON, 201) | ratio (median) | each round |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: |");
    for writers in WRITERS {
        let (mut durable, mut trivial, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..WRITE_ROUNDS {
            let nudge = ServerProcess::nudge()?;
            let stored = durable_writes(client, &nudge.base, writers, WRITE_SECS).await?;
            drop(nudge);
            let ceiling = ServerProcess::baseline("ceiling")?;
            let answered = durable_writes(client, &ceiling.base, writers, WRITE_SECS).await?;
            drop(ceiling);
            durable.push(stored);
            trivial.push(answered);
            ratios.push(stored / answered);
        }
        let each: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
        println!(
            "| {writers} | {:.0}/s | {:.0}/s | {:.2}× | {} |",
            median(&mut durable),
            median(&mut trivial),
            median(&mut ratios),
            each.join(", ")
        );
    }
    Ok(())
}

/// The middle value (of an odd count; the upper middle otherwise).
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Delivery latency beside the floor.
async fn delivery(client: &reqwest::Client) -> anyhow::Result<()> {
    println!(
        "\n## POST to delivery, milliseconds ({ROUNDS} events per size; median of {DELIVERY_ROUNDS} rounds, servers alternating)\n"
    );
    println!("| subscribers | nudge p50 / p99 / max | floor p50 / p99 / max | actix-web-lab p50 / p99 / max | nudge / floor (p99) | nudge / actix-web-lab (p99) | each round's nudge / floor |");
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for subscribers in SUBSCRIBERS {
        let (mut nudge, mut floor, mut lab) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..DELIVERY_ROUNDS {
            nudge.push(delivery_round(client, ServerProcess::nudge()?, subscribers).await?);
            floor.push(
                delivery_round(client, ServerProcess::baseline("floor")?, subscribers).await?,
            );
            lab.push(
                delivery_round(client, ServerProcess::peer("actix-web-lab")?, subscribers).await?,
            );
        }
        let each: Vec<String> = nudge
            .iter()
            .zip(&floor)
            .map(|(n, f)| format!("{:.2}", n.p99 / f.p99))
            .collect();
        let (nudge, floor, lab) = (
            Stats::median(&nudge),
            Stats::median(&floor),
            Stats::median(&lab),
        );
        println!(
            "| {subscribers} | {} | {} | {} | {:.2}× | {:.2}× | {} |",
            fmt_stats(&nudge),
            fmt_stats(&floor),
            fmt_stats(&lab),
            nudge.p99 / floor.p99,
            nudge.p99 / lab.p99,
            each.join(", ")
        );
    }
    Ok(())
}

/// One server's latency figures at `subscribers` streams; the server is stopped after.
async fn delivery_round(
    client: &reqwest::Client,
    server: ServerProcess,
    subscribers: usize,
) -> anyhow::Result<Stats> {
    let subs = open_subscribers(&server.base, subscribers).await?;
    latency_rounds(client, &server.base, subs, ROUNDS).await
}

/// Resident memory per idle subscriber: nudge beside a plain actix-web stream and the floor.
///
/// Each server first gets [`WARM_UP_STREAMS`] streams, which also pay what a fresh process
/// makes on first use (allocator arenas and blocking threads per worker, nudge's read
/// connections); the per-subscriber figure is the growth from the streams opened after them.
/// The warm-up's growth is printed below the table, so nothing is left out.
async fn memory() -> anyhow::Result<()> {
    println!("\n## Resident memory per idle subscriber\n");
    println!("| subscribers | nudge | plain actix-web stream | actix-web-lab broadcaster | floor | nudge / actix-web | nudge / actix-web-lab | nudge / floor |");
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut warm_ups = Vec::new();
    for subscribers in SUBSCRIBERS {
        let nudge = rss_per_subscriber(ServerProcess::nudge()?, subscribers).await?;
        let plain =
            rss_per_subscriber(ServerProcess::baseline("actix-stream")?, subscribers).await?;
        let lab = rss_per_subscriber(ServerProcess::peer("actix-web-lab")?, subscribers).await?;
        let floor = rss_per_subscriber(ServerProcess::baseline("floor")?, subscribers).await?;
        println!(
            "| {subscribers} | {:.1} KB | {:.1} KB | {:.1} KB | {:.1} KB | {:.2}× | {:.2}× | {:.2}× |",
            nudge.1 / 1000.0,
            plain.1 / 1000.0,
            lab.1 / 1000.0,
            floor.1 / 1000.0,
            nudge.1 / plain.1,
            nudge.1 / lab.1,
            nudge.1 / floor.1
        );
        warm_ups.push((nudge.0, plain.0, floor.0));
    }
    let mb = |bytes: f64| bytes / 1e6;
    for (nudge, plain, floor) in warm_ups {
        println!(
            "\nThe first {WARM_UP_STREAMS} streams of a fresh process (not counted above) grew nudge by {:.1} MB, the plain actix-web stream by {:.1} MB, the floor by {:.1} MB.",
            mb(nudge),
            mb(plain),
            mb(floor)
        );
    }
    Ok(())
}

/// Streams opened before measuring, so that one-time costs are not counted per subscriber.
const WARM_UP_STREAMS: usize = 100;

/// What the first [`WARM_UP_STREAMS`] streams grew the server by, and the bytes of resident
/// memory it grew by per subscriber for `subscribers` more, all idle with their response heads.
async fn rss_per_subscriber(
    server: ServerProcess,
    subscribers: usize,
) -> anyhow::Result<(f64, f64)> {
    let fresh = server.rss_kib()?;
    let warm_up = open_subscribers(&server.base, WARM_UP_STREAMS).await?;
    let before = server.rss_kib()?;
    let subs = open_subscribers(&server.base, subscribers).await?;
    let grown = server.rss_kib()?.saturating_sub(before);
    drop((subs, warm_up));
    drop(server);
    let warm_up_bytes = before.saturating_sub(fresh) as f64 * 1024.0;
    Ok((warm_up_bytes, grown as f64 * 1024.0 / subscribers as f64))
}

fn fmt_stats(stats: &Stats) -> String {
    format!("{:.1} / {:.1} / {:.1}", stats.p50, stats.p99, stats.max)
}
