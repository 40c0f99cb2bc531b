//! Web Push: how fast pushes leave for a push service (a local one of this benchmark's, which
//! answers 201 at once), and whether writes slow down while they do. Subscriptions are put
//! straight into the store's table (the endpoint that adds them is rate-limited per address);
//! the sender reads them within its 3 s refresh.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{web, HttpResponse};
use anyhow::Context;

use crate::client::durable_writes;
use crate::process::ServerProcess;

/// Subscription counts for the push-rate table.
const SUBSCRIPTIONS: [usize; 2] = [1_000, 10_000];
/// The generator of P-256, uncompressed: a valid key for a browser that never decrypts.
const P256_G: &str = "046B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296\
                      4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5";

/// A push service that counts what it receives and answers 201.
async fn push_service() -> anyhow::Result<(String, Arc<AtomicU64>)> {
    let received = Arc::new(AtomicU64::new(0));
    let counter = received.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let server = actix_web::HttpServer::new(move || {
        let counter = counter.clone();
        actix_web::App::new().default_service(web::to(move |_body: web::Bytes| {
            counter.fetch_add(1, Ordering::Relaxed);
            async { HttpResponse::Created().finish() }
        }))
    })
    .workers(1)
    .listen(listener)?
    .run();
    tokio::spawn(server);
    Ok((format!("http://{addr}/push"), received))
}

/// Puts `n` subscriptions to `topics` into the store of `nudge`.
fn subscribe(nudge: &ServerProcess, endpoint: &str, n: usize, topics: &str) -> anyhow::Result<()> {
    let db = nudge
        .data_dir()
        .context("a data directory")?
        .join("nudge.sqlite3");
    let mut conn = rusqlite::Connection::open(db)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    let key: Vec<u8> = (0..P256_G.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&P256_G[i..i + 2], 16))
        .collect::<Result<_, _>>()?;
    let tx = conn.transaction()?;
    {
        let mut insert = tx.prepare(
            "INSERT INTO nudge_push_subscriptions (endpoint, p256dh, auth, principal, topics, created_at) \
             VALUES (?1, ?2, ?3, NULL, ?4, 0)",
        )?;
        for i in 0..n {
            insert.execute(rusqlite::params![
                format!("{endpoint}/{i}"),
                key,
                [7u8; 16].to_vec(),
                topics
            ])?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// Waits until `count` reaches `target` or `within` passes; the time it took.
async fn until(count: &AtomicU64, target: u64, within: Duration) -> anyhow::Result<Duration> {
    let start = Instant::now();
    while count.load(Ordering::Relaxed) < target {
        anyhow::ensure!(
            start.elapsed() < within,
            "{} of {target} pushes within {within:?}",
            count.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(start.elapsed())
}

pub async fn run(client: &reqwest::Client) -> anyhow::Result<()> {
    println!("\n## Web Push: pushes per second to a local push service\n");
    println!("One message to a room every subscription follows; time from the POST until the push service has them all.\n");
    println!("| subscriptions | time to send them all | pushes per second |");
    println!("| ---: | ---: | ---: |");
    for n in SUBSCRIPTIONS {
        let (endpoint, received) = push_service().await?;
        let nudge = ServerProcess::nudge_pushing()?;
        subscribe(&nudge, &endpoint, n, r#"["rooms/*"]"#)?;
        // A first message, once the sender has read the subscriptions (at most 3 s), warms up
        // the connections; then the measured one.
        tokio::time::sleep(Duration::from_secs(4)).await;
        crate::client::post_once(client, &nudge.base, 0).await?;
        until(&received, n as u64, Duration::from_secs(300)).await?;
        let start = Instant::now();
        crate::client::post_once(client, &nudge.base, 1).await?;
        until(&received, 2 * n as u64, Duration::from_secs(300)).await?;
        let took = start.elapsed();
        println!(
            "| {n} | {:.0} ms | {:.0}/s |",
            took.as_secs_f64() * 1e3,
            n as f64 / took.as_secs_f64()
        );
    }

    println!("\n## Web Push: durable writes per second (256 writers) with 10,000 subscriptions beside none\n");
    println!("Each round: nudge without push, then nudge with 10,000 subscriptions to the room written to (every write's change is pushed, coalesced per burst), alternating.\n");
    println!(
        "| round | no subscriptions | 10,000 subscriptions | ratio | pushes sent during the run |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: |");
    for round in 1..=3 {
        let plain = ServerProcess::nudge()?;
        let without = durable_writes(client, &plain.base, 256, 3.0).await?;
        drop(plain);
        let (endpoint, received) = push_service().await?;
        let pushing = ServerProcess::nudge_pushing()?;
        subscribe(&pushing, &endpoint, 10_000, r#"["rooms/*"]"#)?;
        tokio::time::sleep(Duration::from_secs(4)).await;
        let before = received.load(Ordering::Relaxed);
        let with = durable_writes(client, &pushing.base, 256, 3.0).await?;
        let pushed = received.load(Ordering::Relaxed) - before;
        drop(pushing);
        println!(
            "| {round} | {without:.0}/s | {with:.0}/s | {:.2}× | {pushed} |",
            with / without
        );
    }
    Ok(())
}
