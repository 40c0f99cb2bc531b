//! The log's reads, each one statement so that everything it returns comes from one snapshot.

use tokio_postgres::{Client, Row, Statement};

use super::conn::{store_error, Prepare};
use crate::store::{scan_limit, LogRange, LoggedEvent, Replay, StoreError, StoreResult, TopicScan};

/// What a resuming stream missed, in one statement so that the log's range and the events come
/// from one snapshot. `$1` is the id to resume after, `$2` the exact topics, `$3` and `$4` the
/// prefix ranges' lower and upper bounds, `$5` the row limit. Exact topics are one `= ANY`
/// search of the index on `events (topic COLLATE "C", id)`, each prefix one range of it; the
/// "C" collation (byte order, whatever the database's) is what makes a prefix one range.
/// The first row carries the range even when nothing was missed.
const REPLAY_SQL: &str = r#"
    WITH meta AS MATERIALIZED (SELECT pruned_through, nudge_head() AS head FROM log_meta),
    missed AS (
        (SELECT id, topic, url FROM events
         WHERE topic COLLATE "C" = ANY($2::text[]) AND id > $1)
        UNION ALL
        (SELECT e.id, e.topic, e.url
         FROM unnest($3::text[], $4::text[]) AS r(lower_bound, upper_bound)
         CROSS JOIN LATERAL (
             SELECT id, topic, url FROM events
             WHERE topic COLLATE "C" > r.lower_bound AND topic COLLATE "C" < r.upper_bound
               AND id > $1) e)
        LIMIT $5
    )
    SELECT meta.pruned_through, meta.head, missed.id, missed.topic, missed.url
    FROM meta LEFT JOIN missed ON true"#;

/// A read connection of the log with its statements prepared once.
pub struct LogReader {
    client: Client,
    replay: Statement,
    log_range: Statement,
}

impl Prepare for LogReader {
    async fn prepare(client: Client) -> StoreResult<Self> {
        let (replay, log_range) = tokio::try_join!(
            client.prepare(REPLAY_SQL),
            client.prepare("SELECT pruned_through, nudge_head() FROM log_meta"),
        )
        .map_err(store_error)?;
        Ok(Self {
            client,
            replay,
            log_range,
        })
    }

    fn client(&self) -> &Client {
        &self.client
    }
}

impl LogReader {
    /// The log's range and at most `max` of the events after `after` on the scanned topics
    /// that it still holds, from one snapshot.
    pub async fn replay(&self, after: i64, scan: &TopicScan, max: usize) -> StoreResult<Replay> {
        let (lower, upper) = bounds(scan);
        let rows = self
            .client
            .query(
                &self.replay,
                &[&after, &scan.exact, &lower, &upper, &scan_limit(max)],
            )
            .await
            .map_err(store_error)?;
        let first = rows
            .first()
            .ok_or_else(|| StoreError::Database("log_meta has no row".into()))?;
        let range = LogRange {
            pruned_through: first.get(0),
            head: first.get(1),
        };
        let events = rows
            .iter()
            .filter(|r| r.get::<_, Option<i64>>(2).is_some())
            .map(|r| LoggedEvent {
                id: r.get(2),
                topic: r.get(3),
                url: r.get(4),
                note: None,
            })
            .collect();
        Ok(Replay::capped(range, events, max))
    }

    /// PostgreSQL's `EXPLAIN` of the replay statement with these arguments, one line per row.
    pub async fn replay_plan(&self, after: i64, scan: &TopicScan) -> StoreResult<Vec<String>> {
        let (lower, upper) = bounds(scan);
        let rows = self
            .client
            .query(
                &format!("EXPLAIN {REPLAY_SQL}"),
                &[&after, &scan.exact, &lower, &upper, &scan_limit(1)],
            )
            .await
            .map_err(store_error)?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// What a stream can resume from.
    pub async fn log_range(&self) -> StoreResult<LogRange> {
        let row = self
            .client
            .query_one(&self.log_range, &[])
            .await
            .map_err(store_error)?;
        Ok(LogRange {
            pruned_through: row.get(0),
            head: row.get(1),
        })
    }

    /// One round trip, for readiness.
    pub async fn ping(&self) -> StoreResult<()> {
        self.client
            .simple_query("")
            .await
            .map(drop)
            .map_err(store_error)
    }

    /// Applies retention (`nudge_prune`, under the commit lock).
    pub async fn prune(&self, max_events: i64, max_age_ms: i64) -> StoreResult<u64> {
        let row = self
            .client
            .query_one("SELECT nudge_prune($1, $2)", &[&max_events, &max_age_ms])
            .await
            .map_err(store_error)?;
        Ok(row.get::<_, i64>(0).max(0) as u64)
    }
}

/// The lower and upper bounds of a scan's prefix ranges, as two arrays.
fn bounds(scan: &TopicScan) -> (Vec<&str>, Vec<&str>) {
    scan.ranges
        .iter()
        .map(|(l, u)| (l.as_str(), u.as_str()))
        .unzip()
}

/// An event from `id, topic, url, note` columns.
pub fn event_from_row(row: &Row) -> LoggedEvent {
    LoggedEvent {
        id: row.get(0),
        topic: row.get(1),
        url: row.get(2),
        note: row.get(3),
    }
}
