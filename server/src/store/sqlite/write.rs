//! Watercooler's writes on SQLite, each run by nudge's writer inside its savepoint of a group
//! commit ([`nudge::store::sqlite::SqliteStore::write`]): the rows and the events that name them
//! commit together.

use nudge::store::sqlite::{now_ms, WriteTx};
use nudge::{Retention, StoreError, StoreResult};
use rusqlite::{params, Connection, OptionalExtension};

use super::{message_from_row, MESSAGE_COLUMNS};
use crate::domain::{Message, NewMessage, RoomName, ROOMS_TOPIC, ROOMS_URL};
use crate::store::{Appended, IdempotencyKey};

/// Creates `room` unless it exists, logging it on the room list with `note` (a membership
/// change to go with it); true when it was created.
pub(super) fn create_room(
    tx: &mut WriteTx<'_>,
    room: &RoomName,
    note: Option<&str>,
) -> StoreResult<bool> {
    let exists: Option<i64> = tx
        .conn()
        .prepare_cached("SELECT 1 FROM rooms WHERE name = ?1")?
        .query_row([room.as_str()], |r| r.get(0))
        .optional()?;
    if exists.is_some() {
        return Ok(false);
    }
    let event_id = match note {
        Some(note) => tx.changed_with_note(ROOMS_TOPIC, ROOMS_URL, note)?,
        None => tx.changed(ROOMS_TOPIC, ROOMS_URL)?,
    };
    tx.conn()
        .prepare_cached(
            "INSERT INTO rooms (name, created_at, created_event, version) VALUES (?1, ?2, ?3, ?3)",
        )?
        .execute(params![room.as_str(), now_ms(), event_id])?;
    Ok(true)
}

/// Stores a message and its event, creating its room if needed; once per idempotency key.
pub(super) fn append(
    tx: &mut WriteTx<'_>,
    message: &NewMessage,
    key: Option<&IdempotencyKey>,
) -> StoreResult<Appended> {
    // What a keyed retry is compared with; only keyed writes need it.
    let request = match key {
        Some(_) => {
            Some(serde_json::to_string(message).map_err(|e| StoreError::Database(e.to_string()))?)
        }
        None => None,
    };
    if let (Some(key), Some(request)) = (key, &request) {
        let conn = tx.conn();
        let earlier: Option<(String, i64)> = conn
            .prepare_cached("SELECT request, message_id FROM idempotency WHERE key = ?1")?
            .query_row([&key.0], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        if let Some((earlier_request, message_id)) = earlier {
            if &earlier_request != request {
                return Err(StoreError::IdempotencyConflict);
            }
            let message = conn
                .prepare_cached(&format!(
                    "SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ?1"
                ))?
                .query_row([message_id], message_from_row)?;
            return Ok(Appended {
                message,
                replayed: true,
            });
        }
    }
    let room = RoomName::parse(&message.room).map_err(|e| StoreError::Database(e.to_string()))?;
    create_room(tx, &room, None)?;
    let event_id = tx.changed(&room.topic(), &room.recent_url())?;
    let created_at = now_ms();
    let conn = tx.conn();
    conn.prepare_cached(
        "INSERT INTO messages (room, author, text, created_at, event_id) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![message.room, message.author, message.text, created_at, event_id])?;
    let id = conn.last_insert_rowid();
    conn.prepare_cached("UPDATE rooms SET version = ?2 WHERE name = ?1")?
        .execute(params![message.room, event_id])?;
    if let (Some(key), Some(request)) = (key, request) {
        conn.prepare_cached(
            "INSERT INTO idempotency (key, request, message_id, created_at) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![key.0, request, id, created_at])?;
    }
    // Everything the answer holds is known here: no need to read the row back.
    let message = Message {
        id,
        room: message.room.clone(),
        author: message.author.clone(),
        text: message.text.clone(),
        created_at: super::rfc3339(created_at),
        event_id,
    };
    Ok(Appended {
        message,
        replayed: false,
    })
}

/// What retention removes beside the log: idempotency records as old as the log keeps (a retry
/// older than that is not a retry), and expired sessions.
pub(super) fn prune(conn: &Connection, retention: Retention) -> StoreResult<()> {
    let cutoff_ms = now_ms() - (retention.max_age_secs.min(i64::MAX as u64 / 1000) as i64) * 1000;
    conn.execute("DELETE FROM idempotency WHERE created_at < ?1", [cutoff_ms])?;
    conn.execute("DELETE FROM sessions WHERE expires_at < ?1", [now_ms()])?;
    Ok(())
}
