//! The chat's reads, each one statement so that everything it returns comes from one snapshot
//! (a room's version and its messages agree, as the ETag requires).

use std::time::{Duration, UNIX_EPOCH};

use nudge::store::postgres::{store_error, Prepare};
use nudge::StoreResult;
use tokio_postgres::{Client, Row, Statement};

use crate::domain::{Message, PageCursor, RoomMessages, RoomSummary};

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

/// A read connection with its statements prepared once.
pub struct Reader {
    /// The connection.
    pub client: Client,
    rooms: Statement,
    latest: Statement,
    before: Statement,
    after: Statement,
}

impl Prepare for Reader {
    /// Prepares every statement on `client` (pipelined: one round trip).
    async fn prepare(client: Client) -> StoreResult<Self> {
        let latest = room_messages_sql("", "DESC");
        let before = room_messages_sql("AND id < $3", "DESC");
        let after = room_messages_sql("AND id > $3", "ASC");
        let (rooms, latest, before, after) = tokio::try_join!(
            client.prepare("SELECT name, created_event FROM rooms ORDER BY name"),
            client.prepare(&latest),
            client.prepare(&before),
            client.prepare(&after),
        )
        .map_err(store_error)?;
        Ok(Self {
            client,
            rooms,
            latest,
            before,
            after,
        })
    }

    fn client(&self) -> &Client {
        &self.client
    }
}

impl Reader {
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
