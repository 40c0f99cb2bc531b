//! Rooms, messages and accounts on nudge's embedded store: every write is a closure on its
//! writer thread (group commit), every read a closure on its pool of read connections.

pub mod accounts;
pub mod schema;
mod write;

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use async_trait::async_trait;
use nudge::store::sqlite::SqliteStore as Core;
use nudge::store::{LogRange, Replay};
use nudge::{EventLog, Retention, StoreError, StoreResult, TopicSet};
use rusqlite::{params, OptionalExtension};

use super::{Appended, IdempotencyKey, Store};
use crate::access::AccessView;
use crate::domain::{Message, NewMessage, PageCursor, RoomMessages, RoomName, RoomSummary};

/// Watercooler's store on SQLite. Cheap to share behind an `Arc`.
pub struct SqliteStore {
    core: Arc<Core>,
}

impl SqliteStore {
    /// The chat over nudge's store `core` (already migrated): fills in old users' name keys,
    /// makes sure the `general` room exists, and loads who may read which room into `access`.
    pub async fn open(core: Arc<Core>, access: AccessView) -> StoreResult<Self> {
        let general =
            RoomName::parse("general").map_err(|e| StoreError::Database(e.to_string()))?;
        core.write(move |tx| {
            accounts::backfill_name_keys(tx.conn())?;
            write::create_room(tx, &general, None)
        })
        .await?;
        access.replace(core.read(|tx| accounts::load_view(tx)).await?);
        Ok(Self { core })
    }

    /// The accounts kept in the same database, through the same writer.
    pub fn accounts(&self) -> accounts::SqliteAccounts {
        accounts::SqliteAccounts::new(self.core.clone())
    }

    /// nudge's store underneath.
    pub fn core(&self) -> &Arc<Core> {
        &self.core
    }
}

pub(crate) fn rfc3339(ms: i64) -> String {
    let time = UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(time).to_string()
}

pub(crate) fn message_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Message> {
    Ok(Message {
        id: row.get(0)?,
        room: row.get(1)?,
        author: row.get(2)?,
        text: row.get(3)?,
        created_at: rfc3339(row.get(4)?),
        event_id: row.get(5)?,
    })
}

const MESSAGE_COLUMNS: &str = "id, room, author, text, created_at, event_id";

fn room_version(tx: &rusqlite::Transaction<'_>, room: &str) -> StoreResult<Option<i64>> {
    Ok(tx
        .query_row("SELECT version FROM rooms WHERE name = ?1", [room], |r| {
            r.get(0)
        })
        .optional()?)
}

#[async_trait]
impl Store for SqliteStore {
    async fn append_message(
        &self,
        message: NewMessage,
        key: Option<IdempotencyKey>,
    ) -> StoreResult<Appended> {
        self.core
            .write(move |tx| write::append(tx, &message, key.as_ref()))
            .await
    }

    async fn create_room(&self, room: &RoomName) -> StoreResult<bool> {
        let room = room.clone();
        self.core
            .write(move |tx| write::create_room(tx, &room, None))
            .await
    }

    async fn rooms(&self) -> StoreResult<Vec<RoomSummary>> {
        self.core
            .read(|tx| {
                let mut stmt =
                    tx.prepare_cached("SELECT name, created_event FROM rooms ORDER BY name")?;
                let rows = stmt.query_map([], |r| {
                    Ok(RoomSummary {
                        name: r.get(0)?,
                        created_event_id: r.get(1)?,
                    })
                })?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
            .await
    }

    async fn recent(&self, room: &RoomName, count: usize) -> StoreResult<Option<RoomMessages>> {
        self.page(
            room,
            PageCursor::Latest,
            count.min(u32::MAX as usize) as u32,
        )
        .await
    }

    async fn page(
        &self,
        room: &RoomName,
        cursor: PageCursor,
        limit: u32,
    ) -> StoreResult<Option<RoomMessages>> {
        let room = room.as_str().to_owned();
        self.core
            .read(move |tx| {
                let Some(version) = room_version(tx, &room)? else {
                    return Ok(None);
                };
                let (comparison, order, bound) = match cursor {
                    PageCursor::Latest => ("<", "DESC", i64::MAX),
                    PageCursor::Before(id) => ("<", "DESC", id),
                    PageCursor::After(id) => (">", "ASC", id),
                };
                let sql = format!(
                    "SELECT {MESSAGE_COLUMNS} FROM messages WHERE room = ?1 AND id {comparison} ?3 \
                     ORDER BY id {order} LIMIT ?2"
                );
                let mut messages = tx
                    .prepare_cached(&sql)?
                    .query_map(params![room, limit, bound], message_from_row)?
                    .collect::<Result<Vec<_>, _>>()?;
                if order == "DESC" {
                    messages.reverse();
                }
                Ok(Some(RoomMessages {
                    room,
                    messages,
                    last_event_id: version,
                }))
            })
            .await
    }
}

#[async_trait]
impl EventLog for SqliteStore {
    async fn replay(&self, after: i64, topics: &TopicSet, max: usize) -> StoreResult<Replay> {
        self.core.replay(after, topics, max).await
    }

    async fn log_range(&self) -> StoreResult<LogRange> {
        self.core.log_range().await
    }

    /// The log's retention, then Watercooler's: old idempotency records, expired sessions.
    async fn prune(&self, retention: Retention) -> StoreResult<u64> {
        let removed = self.core.prune(retention).await?;
        self.core
            .write(move |tx| write::prune(tx.conn(), retention))
            .await?;
        Ok(removed)
    }

    async fn ping(&self) -> StoreResult<()> {
        self.core.ping().await
    }

    async fn close(&self) {
        self.core.close().await
    }
}
