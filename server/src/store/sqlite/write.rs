//! The writer thread: group commit and publication in commit order.

use std::sync::mpsc;

use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use tokio::sync::oneshot;

use super::accounts::{self, AccountOp, Applied};
use super::{message_from_row, now_ms, MESSAGE_COLUMNS};
use crate::domain::{Message, NewMessage, RoomName, ROOMS_TOPIC, ROOMS_URL};
use crate::hub::{Hub, HubEvent};
use crate::store::accounts::AccountResult;
use crate::store::{Appended, IdempotencyKey, LoggedEvent, Retention, StoreError, StoreResult};

/// Most writes sharing one transaction; bounds the latency one commit adds to the first write.
const MAX_BATCH: usize = 1024;

/// A write waiting for the writer thread.
pub enum WriteJob {
    /// Store a message and its event.
    Append {
        /// The validated message.
        message: NewMessage,
        /// The client's idempotency key, if any.
        key: Option<IdempotencyKey>,
        /// Where the answer goes.
        reply: oneshot::Sender<StoreResult<Appended>>,
    },
    /// Create a room.
    CreateRoom {
        /// Its name.
        room: RoomName,
        /// True when it was created, false when it existed.
        reply: oneshot::Sender<StoreResult<bool>>,
    },
    /// Change users, sessions or members.
    Account {
        /// What to change.
        op: AccountOp,
        /// The outcome, or why it was refused.
        reply: oneshot::Sender<AccountResult<Applied>>,
    },
    /// Report the connection's durability settings (for tests and diagnosis).
    Settings {
        /// The settings as SQLite reports them.
        reply: oneshot::Sender<StoreResult<WriterSettings>>,
    },
    /// Apply retention to the log.
    Prune {
        /// The limits.
        retention: Retention,
        /// How many events were removed.
        reply: oneshot::Sender<StoreResult<u64>>,
    },
}

/// The durability settings of the writer's connection, as SQLite reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriterSettings {
    /// `PRAGMA journal_mode`: `wal`.
    pub journal_mode: String,
    /// `PRAGMA synchronous`: 2 is FULL (a commit is on disk when it returns).
    pub synchronous: i64,
    /// `PRAGMA foreign_keys`: 1 is on.
    pub foreign_keys: i64,
}

fn settings(conn: &Connection) -> StoreResult<WriterSettings> {
    let pragma =
        |name: &str| conn.pragma_query_value(None, name, |r| r.get::<_, rusqlite::types::Value>(0));
    let text = |v: rusqlite::types::Value| match v {
        rusqlite::types::Value::Text(t) => t,
        rusqlite::types::Value::Integer(n) => n.to_string(),
        other => format!("{other:?}"),
    };
    let int = |v: rusqlite::types::Value| match v {
        rusqlite::types::Value::Integer(n) => n,
        _ => -1,
    };
    Ok(WriterSettings {
        journal_mode: text(pragma("journal_mode")?),
        synchronous: int(pragma("synchronous")?),
        foreign_keys: int(pragma("foreign_keys")?),
    })
}

/// An answer held back until the batch's commit is durable.
enum Pending {
    Append(
        oneshot::Sender<StoreResult<Appended>>,
        StoreResult<Appended>,
    ),
    CreateRoom(oneshot::Sender<StoreResult<bool>>, StoreResult<bool>),
    Prune(oneshot::Sender<StoreResult<u64>>, StoreResult<u64>),
    Settings(
        oneshot::Sender<StoreResult<WriterSettings>>,
        StoreResult<WriterSettings>,
    ),
    Account(
        oneshot::Sender<AccountResult<Applied>>,
        AccountResult<Applied>,
    ),
}

impl Pending {
    fn send(self) {
        // A caller that went away (its request was cancelled) no longer needs the answer; the
        // write itself is durable either way.
        let _ = match self {
            Pending::Append(tx, r) => tx.send(r).map_err(drop),
            Pending::CreateRoom(tx, r) => tx.send(r).map_err(drop),
            Pending::Prune(tx, r) => tx.send(r).map_err(drop),
            Pending::Settings(tx, r) => tx.send(r).map_err(drop),
            Pending::Account(tx, r) => tx.send(r).map_err(drop),
        };
    }

    /// The same answer, with a failed commit replacing a successful result.
    fn failed(self, error: &StoreError) -> Self {
        let err = || StoreError::Database(error.to_string());
        match self {
            Pending::Append(tx, _) => Pending::Append(tx, Err(err())),
            Pending::CreateRoom(tx, _) => Pending::CreateRoom(tx, Err(err())),
            Pending::Prune(tx, _) => Pending::Prune(tx, Err(err())),
            Pending::Settings(tx, _) => Pending::Settings(tx, Err(err())),
            Pending::Account(tx, _) => Pending::Account(tx, Err(err().into())),
        }
    }

    /// The membership change this answer committed, if any.
    fn access_change(&self) -> Option<&crate::access::AccessChange> {
        match self {
            Pending::Account(_, Ok(applied)) => applied.change.as_ref(),
            _ => None,
        }
    }
}

/// Owns the write connection.
pub struct Writer {
    conn: Connection,
    hub: Hub,
}

impl Writer {
    /// A writer over a configured, migrated connection.
    pub fn new(conn: Connection, hub: Hub) -> Self {
        Self { conn, hub }
    }

    /// Serves jobs until every sender is gone, then returns (closing the connection).
    pub fn run(mut self, jobs: mpsc::Receiver<WriteJob>) {
        while let Ok(first) = jobs.recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match jobs.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            self.commit_batch(batch);
        }
    }

    fn commit_batch(&mut self, batch: Vec<WriteJob>) {
        let mut events = Vec::new();
        let mut answers = Vec::with_capacity(batch.len());
        let outcome = (|| -> StoreResult<()> {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            for job in batch {
                answers.push(apply_in_savepoint(&tx, job, &mut events));
            }
            // Access that narrows (a private room, a revocation) takes effect before the
            // commit and access that widens after it, so no read or delivery ever sees more
            // than what is committed; all of it before this batch's events are published.
            for change in answers.iter().filter_map(Pending::access_change) {
                if change.narrows() {
                    self.hub.change_access(change);
                }
            }
            tx.commit()?;
            Ok(())
        })();
        match outcome {
            Ok(()) => {
                for change in answers.iter().filter_map(Pending::access_change) {
                    if !change.narrows() {
                        self.hub.change_access(change);
                    }
                }
                self.publish(events);
                answers.into_iter().for_each(Pending::send);
            }
            Err(error) => {
                tracing::error!(%error, "commit failed; answering the batch with errors");
                // Undo what was narrowed ahead of the commit: the database is the truth.
                match accounts::load_view(&self.conn) {
                    Ok(view) => self.hub.access().replace(view),
                    Err(error) => tracing::error!(%error, "reloading the access view failed"),
                }
                answers
                    .into_iter()
                    .for_each(|pending| pending.failed(&error).send());
            }
        }
    }

    fn publish(&self, events: Vec<LoggedEvent>) {
        for event in events {
            self.hub
                .publish(HubEvent::logged(event.id, &event.topic, &event.url));
        }
    }
}

/// Creates the `general` room if it does not exist yet (before any subscriber can listen).
pub fn ensure_general(conn: &mut Connection) -> StoreResult<()> {
    let general = RoomName::parse("general").map_err(|e| StoreError::Database(e.to_string()))?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    create_room(&tx, &general, &mut Vec::new())?;
    tx.commit()?;
    Ok(())
}

/// Applies one job inside a savepoint, so a job that fails leaves no trace and does not spoil
/// the other jobs of its batch.
fn apply_in_savepoint(
    tx: &Transaction<'_>,
    job: WriteJob,
    events: &mut Vec<LoggedEvent>,
) -> Pending {
    let mark = events.len();
    let mut run = |f: &mut dyn FnMut(&Connection, &mut Vec<LoggedEvent>) -> StoreResult<()>| {
        let result = (|| {
            // Prepared once per connection: at hundreds of jobs per batch, parsing these two
            // statements each time showed in profiles.
            tx.prepare_cached("SAVEPOINT job")?.execute([])?;
            match f(tx, events) {
                Ok(()) => {
                    tx.prepare_cached("RELEASE job")?.execute([])?;
                    Ok(())
                }
                Err(e) => {
                    tx.execute_batch("ROLLBACK TO job; RELEASE job")?;
                    Err(e)
                }
            }
        })();
        if result.is_err() {
            events.truncate(mark);
        }
        result
    };
    match job {
        WriteJob::Append {
            message,
            key,
            reply,
        } => {
            let mut answer = None;
            let result = run(&mut |conn, events| {
                answer = Some(append(conn, &message, key.as_ref(), events)?);
                Ok(())
            });
            Pending::Append(reply, result.map(|()| answer.expect("set on success")))
        }
        WriteJob::CreateRoom { room, reply } => {
            let mut created = false;
            let result = run(&mut |conn, events| {
                created = create_room(conn, &room, events)?;
                Ok(())
            });
            Pending::CreateRoom(reply, result.map(|()| created))
        }
        WriteJob::Account { op, reply } => {
            // Refusals are found before anything is written, so they need no rollback.
            let mut answer = None;
            let result = run(&mut |conn, events| {
                match accounts::apply(conn, &op, events) {
                    Err(crate::store::accounts::AccountError::Store(e)) => return Err(e),
                    other => answer = Some(other),
                }
                Ok(())
            });
            let answer = match (result, answer) {
                (Ok(()), Some(answer)) => answer,
                (Err(e), _) => Err(e.into()),
                (Ok(()), None) => Err(StoreError::Database("no answer".into()).into()),
            };
            Pending::Account(reply, answer)
        }
        WriteJob::Settings { reply } => Pending::Settings(reply, settings(tx)),
        WriteJob::Prune { retention, reply } => {
            let mut removed = 0;
            let result = run(&mut |conn, _| {
                removed = prune(conn, retention)?;
                Ok(())
            });
            Pending::Prune(reply, result.map(|()| removed))
        }
    }
}

pub(super) fn log_event(
    conn: &Connection,
    topic: &str,
    url: &str,
    events: &mut Vec<LoggedEvent>,
) -> StoreResult<i64> {
    conn.prepare_cached("INSERT INTO events (topic, url, created_at) VALUES (?1, ?2, ?3)")?
        .execute(params![topic, url, now_ms()])?;
    let id = conn.last_insert_rowid();
    events.push(LoggedEvent {
        id,
        topic: topic.to_owned(),
        url: url.to_owned(),
    });
    Ok(id)
}

pub(super) fn create_room(
    conn: &Connection,
    room: &RoomName,
    events: &mut Vec<LoggedEvent>,
) -> StoreResult<bool> {
    let exists: Option<i64> = conn
        .prepare_cached("SELECT 1 FROM rooms WHERE name = ?1")?
        .query_row([room.as_str()], |r| r.get(0))
        .optional()?;
    if exists.is_some() {
        return Ok(false);
    }
    let event_id = log_event(conn, ROOMS_TOPIC, ROOMS_URL, events)?;
    conn.prepare_cached(
        "INSERT INTO rooms (name, created_at, created_event, version) VALUES (?1, ?2, ?3, ?3)",
    )?
    .execute(params![room.as_str(), now_ms(), event_id])?;
    Ok(true)
}

fn append(
    conn: &Connection,
    message: &NewMessage,
    key: Option<&IdempotencyKey>,
    events: &mut Vec<LoggedEvent>,
) -> StoreResult<Appended> {
    // What a keyed retry is compared with; only keyed writes need it.
    let request = match key {
        Some(_) => {
            Some(serde_json::to_string(message).map_err(|e| StoreError::Database(e.to_string()))?)
        }
        None => None,
    };
    if let (Some(key), Some(request)) = (key, &request) {
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
    create_room(conn, &room, events)?;
    let event_id = log_event(conn, &room.topic(), &room.recent_url(), events)?;
    let created_at = now_ms();
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

fn prune(conn: &Connection, retention: Retention) -> StoreResult<u64> {
    let head = super::schema::head(conn)?;
    let by_count = head - retention.max_events.min(i64::MAX as u64) as i64;
    let cutoff_ms = now_ms() - (retention.max_age_secs.min(i64::MAX as u64 / 1000) as i64) * 1000;
    let by_age: i64 = conn.query_row(
        "SELECT COALESCE(MAX(id), 0) FROM events WHERE created_at < ?1",
        [cutoff_ms],
        |r| r.get(0),
    )?;
    let through = by_count.max(by_age);
    if through <= 0 {
        return Ok(0);
    }
    let removed = conn.execute("DELETE FROM events WHERE id <= ?1", [through])?;
    conn.execute(
        "UPDATE log_meta SET value = MAX(value, ?1) WHERE key = 'pruned_through'",
        [through],
    )?;
    // Idempotency records live as long as the log: a retry older than that is not a retry.
    conn.execute("DELETE FROM idempotency WHERE created_at < ?1", [cutoff_ms])?;
    conn.execute("DELETE FROM sessions WHERE expires_at < ?1", [now_ms()])?;
    Ok(removed as u64)
}
