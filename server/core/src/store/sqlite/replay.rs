//! Reading what a resuming stream missed from the index on `events (topic, id)`: one index
//! search per exact topic and one range per prefix, joined with `UNION ALL` under one `LIMIT`,
//! so a resume reads at most the cap (plus one) of the subscribed topics' events however large
//! the log is. The rows are put in id order afterwards.

use rusqlite::types::Value;
use rusqlite::{params_from_iter, Transaction};

use crate::store::{scan_limit, LogRange, LoggedEvent, Replay, StoreResult, TopicScan};

/// The statement for a scan's shape: `?1` is the id to resume after, `?2` the row limit, then
/// the exact topics, then each range's two bounds.
fn sql(scan: &TopicScan) -> String {
    let mut branches = Vec::new();
    let mut n = 2;
    for _ in &scan.exact {
        n += 1;
        branches.push(format!(
            "SELECT id, topic, url FROM events WHERE topic = ?{n} AND id > ?1"
        ));
    }
    for _ in &scan.ranges {
        branches.push(format!(
            "SELECT id, topic, url FROM events WHERE topic > ?{} AND topic < ?{} AND id > ?1",
            n + 1,
            n + 2
        ));
        n += 2;
    }
    if branches.is_empty() {
        // A set of selectors always has one; keep the statement valid anyway.
        branches.push("SELECT id, topic, url FROM events WHERE 0".into());
    }
    format!("{} LIMIT ?2", branches.join(" UNION ALL "))
}

fn params(after: i64, limit: i64, scan: &TopicScan) -> Vec<Value> {
    let mut values = vec![Value::Integer(after), Value::Integer(limit)];
    values.extend(scan.exact.iter().map(|t| Value::Text(t.clone())));
    for (lower, upper) in &scan.ranges {
        values.extend([Value::Text(lower.clone()), Value::Text(upper.clone())]);
    }
    values
}

/// The log's range and at most `max` of the events after `after` it still holds; all from the
/// read transaction `tx`, one snapshot.
pub fn read(tx: &Transaction<'_>, after: i64, scan: &TopicScan, max: usize) -> StoreResult<Replay> {
    let range: LogRange = super::schema::log_range(tx)?;
    let mut stmt = tx.prepare_cached(&sql(scan))?;
    let rows = stmt.query_map(
        params_from_iter(params(after, scan_limit(max), scan)),
        |r| {
            Ok(LoggedEvent {
                id: r.get(0)?,
                topic: r.get(1)?,
                url: r.get(2)?,
                note: None,
            })
        },
    )?;
    let events = rows.collect::<Result<Vec<_>, _>>()?;
    Ok(Replay::capped(range, events, max))
}

/// SQLite's `EXPLAIN QUERY PLAN` of the replay statement for `scan`, one line per step.
pub fn plan(tx: &Transaction<'_>, after: i64, scan: &TopicScan) -> StoreResult<Vec<String>> {
    let mut stmt = tx.prepare(&format!("EXPLAIN QUERY PLAN {}", sql(scan)))?;
    let rows = stmt.query_map(params_from_iter(params(after, 1, scan)), |r| {
        r.get::<_, String>(3)
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
