//! Reads, each one statement so that everything it returns comes from one snapshot (a room's
//! version and its messages agree, as the ETag requires).

use std::time::{Duration, UNIX_EPOCH};

use tokio_postgres::{Client, Row, Statement};

use super::conn::store_error;
use crate::domain::{Message, PageCursor, RoomMessages, RoomSummary};
use crate::store::{scan_limit, LogRange, LoggedEvent, Replay, StoreError, StoreResult, TopicScan};

/// The room's version, then one row per message (message columns null for an empty room);
/// no row at all when the room does not exist. The version is the event of the room's newest
/// message (ids of both increase in commit order), or its creation's when it has none.
fn room_messages_sql(filter: &str, order: &str) -> String {
    format!(
        "SELECT COALESCE((SELECT event_id FROM messages WHERE room = r.name \
                          ORDER BY id DESC LIMIT 1), r.created_event), \
                m.id, m.room, m.author, m.text, m.created_at, m.event_id \
         FROM rooms r LEFT JOIN LATERAL ( \
             SELECT * FROM messages WHERE room = r.name {filter} ORDER BY id {order} LIMIT $2 \
         ) m ON true WHERE r.name = $1 ORDER BY m.id"
    )
}

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

/// A read connection with its statements prepared once.
pub struct Reader {
    /// The connection.
    pub client: Client,
    rooms: Statement,
    latest: Statement,
    before: Statement,
    after: Statement,
    replay: Statement,
    log_range: Statement,
}

impl Reader {
    /// Prepares every statement on `client` (pipelined: one round trip).
    pub async fn prepare(client: Client) -> StoreResult<Self> {
        let latest = room_messages_sql("", "DESC");
        let before = room_messages_sql("AND id < $3", "DESC");
        let after = room_messages_sql("AND id > $3", "ASC");
        let (rooms, latest, before, after, replay, log_range) = tokio::try_join!(
            client.prepare("SELECT name, created_event FROM rooms ORDER BY name"),
            client.prepare(&latest),
            client.prepare(&before),
            client.prepare(&after),
            client.prepare(REPLAY_SQL),
            client.prepare("SELECT pruned_through, nudge_head() FROM log_meta"),
        )
        .map_err(store_error)?;
        Ok(Self {
            client,
            rooms,
            latest,
            before,
            after,
            replay,
            log_range,
        })
    }

    /// All rooms, by name.
    pub async fn rooms(&self) -> StoreResult<Vec<RoomSummary>> {
        let rows = self
            .client
            .query(&self.rooms, &[])
            .await
            .map_err(store_error)?;
        Ok(rows
            .iter()
            .map(|r| RoomSummary {
                name: r.get(0),
                created_event_id: r.get(1),
            })
            .collect())
    }

    /// A room's messages after `cursor`, oldest first; `None` when the room does not exist.
    pub async fn room_messages(
        &self,
        room: &str,
        cursor: PageCursor,
        limit: i64,
    ) -> StoreResult<Option<RoomMessages>> {
        let rows = match cursor {
            PageCursor::Latest => self.client.query(&self.latest, &[&room, &limit]).await,
            PageCursor::Before(id) => self.client.query(&self.before, &[&room, &limit, &id]).await,
            PageCursor::After(id) => self.client.query(&self.after, &[&room, &limit, &id]).await,
        }
        .map_err(store_error)?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let last_event_id = first.get(0);
        let messages = rows
            .iter()
            .filter(|r| r.get::<_, Option<i64>>(1).is_some())
            .map(message_from_row)
            .collect();
        Ok(Some(RoomMessages {
            room: room.to_owned(),
            messages,
            last_event_id,
        }))
    }

    /// The log's range and at most `max` of the events after `after` on the scanned topics
    /// that it still holds, from one snapshot.
    pub async fn replay(&self, after: i64, scan: &TopicScan, max: usize) -> StoreResult<Replay> {
        let (lower, upper): (Vec<&str>, Vec<&str>) = scan
            .ranges
            .iter()
            .map(|(l, u)| (l.as_str(), u.as_str()))
            .unzip();
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
            })
            .collect();
        Ok(Replay::capped(range, events, max))
    }

    /// PostgreSQL's `EXPLAIN` of the replay statement with these arguments, one line per row.
    pub async fn replay_plan(&self, after: i64, scan: &TopicScan) -> StoreResult<Vec<String>> {
        let (lower, upper): (Vec<&str>, Vec<&str>) = scan
            .ranges
            .iter()
            .map(|(l, u)| (l.as_str(), u.as_str()))
            .unzip();
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
}

/// An event from `id, topic, url` columns.
pub fn event_from_row(row: &Row) -> LoggedEvent {
    LoggedEvent {
        id: row.get(0),
        topic: row.get(1),
        url: row.get(2),
    }
}

/// A message from the columns after the room version.
fn message_from_row(row: &Row) -> Message {
    message_from_columns(row, 1)
}

/// A message from six columns starting at `first`: id, room, author, text, created_at
/// (milliseconds), event_id.
pub fn message_from_columns(row: &Row, first: usize) -> Message {
    let ms: i64 = row.get(first + 4);
    Message {
        id: row.get(first),
        room: row.get(first + 1),
        author: row.get(first + 2),
        text: row.get(first + 3),
        created_at: rfc3339(ms),
        event_id: row.get(first + 5),
    }
}

fn rfc3339(ms: i64) -> String {
    let time = UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(time).to_string()
}
