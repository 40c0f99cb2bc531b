//! The PostgreSQL section: the same load client against `nudge --database-url`, on a throwaway
//! cluster with `fsync` on (started here, removed when the benchmark ends), each figure beside
//! the single-node SQLite figure measured in the same run:
//! - durable messages per second at 256 writers, on one node and split over two nodes;
//! - time from a POST on node A to delivery on node B, beside POST and delivery on one node.

#[path = "../../tests/common/pg.rs"]
mod pg;

use crate::client::{durable_writes, latency_rounds, open_subscribers};
use crate::process::ServerProcess;
use crate::{fmt_stats, ROUNDS, WRITE_SECS};

/// Writers for the throughput comparison.
const WRITERS: usize = 256;
/// Subscribers for the latency comparison.
const SUBSCRIBERS: usize = 1_000;

/// Prints the PostgreSQL tables.
pub async fn run(client: &reqwest::Client) -> anyhow::Result<()> {
    let cluster =
        tokio::task::spawn_blocking(|| pg::Cluster::start(pg::Options { fsync: true })).await?;

    println!("\n## PostgreSQL: durable writes per second ({WRITERS} writers)\n");
    println!("| nodes | nudge (PostgreSQL, fsync on) | nudge (SQLite, synchronous=FULL) | ratio |");
    println!("| ---: | ---: | ---: | ---: |");
    let sqlite = {
        let node = ServerProcess::nudge()?;
        durable_writes(client, &node.base, WRITERS, WRITE_SECS).await?
    };
    for nodes in [1, 2] {
        let url = cluster.fresh_database();
        let servers = (0..nodes)
            .map(|_| ServerProcess::nudge_postgres(&url))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let rates = futures_util::future::try_join_all(
            servers
                .iter()
                .map(|s| durable_writes(client, &s.base, WRITERS / nodes, WRITE_SECS)),
        )
        .await?;
        let durable: f64 = rates.iter().sum();
        println!(
            "| {nodes} | {durable:.0}/s | {sqlite:.0}/s | {:.2}× |",
            durable / sqlite
        );
    }

    println!("\n## PostgreSQL: POST to delivery, milliseconds ({ROUNDS} events)\n");
    println!(
        "| subscribers | POST on A, delivery on B p50 / p99 / max | one node (SQLite) p50 / p99 / max | p99 ratio |"
    );
    println!("| ---: | ---: | ---: | ---: |");
    let url = cluster.fresh_database();
    let (a, b) = (
        ServerProcess::nudge_postgres(&url)?,
        ServerProcess::nudge_postgres(&url)?,
    );
    let subs = open_subscribers(&b.base, SUBSCRIBERS).await?;
    let across = latency_rounds(client, &a.base, subs, ROUNDS).await?;
    drop((a, b));
    let single = ServerProcess::nudge()?;
    let subs = open_subscribers(&single.base, SUBSCRIBERS).await?;
    let local = latency_rounds(client, &single.base, subs, ROUNDS).await?;
    drop(single);
    println!(
        "| {SUBSCRIBERS} | {} | {} | {:.2}× |",
        fmt_stats(&across),
        fmt_stats(&local),
        across.p99 / local.p99
    );
    drop(cluster);
    Ok(())
}
