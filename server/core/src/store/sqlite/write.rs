//! The writer thread: group commit and publication in commit order.
//!
//! A write is a closure the app hands over ([`super::SqliteStore::write`]); the thread takes every
//! write that is waiting, runs each inside a savepoint of one transaction (a write that fails
//! leaves no trace and does not spoil the others), commits them with one fsync, and only then
//! answers them and publishes their events, in commit order.

use std::sync::mpsc;
use std::sync::Arc;

use rusqlite::{params, Connection, Transaction, TransactionBehavior};

use super::now_ms;
use crate::audience::Audience;
use crate::hub::{Hub, HubEvent};
use crate::store::{LoggedEvent, Retention, StoreError, StoreResult};

/// Most writes sharing one transaction; bounds the latency one commit adds to the first write.
const MAX_BATCH: usize = 1024;

/// A write's answer, held back until the batch's commit is durable; given the commit's outcome.
pub(super) type Answer = Box<dyn FnOnce(Result<(), &StoreError>) + Send>;

/// A write waiting for the writer thread: runs in its savepoint (or is told why it cannot)
/// and returns whether to keep what it did, and how to answer once the commit is decided.
pub(super) type WriteJob =
    Box<dyn FnOnce(Result<&mut WriteTx<'_>, StoreError>) -> (bool, Answer) + Send>;

/// What a write closure may do: run statements on the writer's connection (inside the
/// write's savepoint) and log what changed.
pub struct WriteTx<'a> {
    conn: &'a Connection,
    events: &'a mut Vec<LoggedEvent>,
}

impl WriteTx<'_> {
    /// The writer's connection, inside this write's savepoint of the batch's transaction.
    pub fn conn(&self) -> &Connection {
        self.conn
    }

    /// Logs "the resource at `url` changed" on `topic`; the event is published after the
    /// commit, in commit order. Returns its id.
    pub fn changed(&mut self, topic: &str, url: &str) -> StoreResult<i64> {
        self.log(topic, url, None)
    }

    /// [`WriteTx::changed`] with a note for the app's [`Audience::committed`] (e.g. who lost
    /// access to what); notes are never sent to clients.
    pub fn changed_with_note(&mut self, topic: &str, url: &str, note: &str) -> StoreResult<i64> {
        self.log(topic, url, Some(note))
    }

    fn log(&mut self, topic: &str, url: &str, note: Option<&str>) -> StoreResult<i64> {
        self.conn
            .prepare_cached(
                "INSERT INTO events (topic, url, created_at, note) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![topic, url, now_ms(), note])?;
        let id = self.conn.last_insert_rowid();
        self.events.push(LoggedEvent {
            id,
            topic: topic.to_owned(),
            url: url.to_owned(),
            note: note.map(str::to_owned),
        });
        Ok(id)
    }
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

/// The settings of `conn`, as SQLite reports them.
pub(super) fn settings(conn: &Connection) -> StoreResult<WriterSettings> {
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

/// Owns the write connection.
pub(super) struct Writer {
    conn: Connection,
    hub: Hub,
    audience: Arc<dyn Audience>,
}

impl Writer {
    /// A writer over a configured, migrated connection.
    pub(super) fn new(conn: Connection, hub: Hub) -> Self {
        let audience = hub.audience().clone();
        Self {
            conn,
            hub,
            audience,
        }
    }

    /// Serves jobs until every sender is gone, then returns (closing the connection).
    pub(super) fn run(mut self, jobs: mpsc::Receiver<WriteJob>) {
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
            tx.commit()?;
            Ok(())
        })();
        match outcome {
            Ok(()) => {
                self.publish(events);
                answers.into_iter().for_each(|answer| answer(Ok(())));
            }
            Err(error) => {
                tracing::error!(%error, "commit failed; answering the batch with errors");
                answers.into_iter().for_each(|answer| answer(Err(&error)));
            }
        }
    }

    /// Each event, in commit order: the app's audience first (a logged revocation ends the
    /// topic on the principal's streams before anything committed after it goes out), then
    /// the streams.
    fn publish(&self, events: Vec<LoggedEvent>) {
        for event in events {
            for revoked in self.audience.committed(&event) {
                self.hub.revoke(&revoked.principal, &revoked.topic);
            }
            self.hub
                .publish(HubEvent::logged(event.id, &event.topic, &event.url));
        }
    }
}

/// Runs one job inside a savepoint, so a job that fails leaves no trace and does not spoil
/// the other jobs of its batch.
fn apply_in_savepoint(
    tx: &Transaction<'_>,
    job: WriteJob,
    events: &mut Vec<LoggedEvent>,
) -> Answer {
    let mark = events.len();
    // Prepared once per connection: at hundreds of jobs per batch, parsing these two
    // statements each time showed in profiles.
    if let Err(error) = tx
        .prepare_cached("SAVEPOINT job")
        .and_then(|mut s| s.execute([]))
    {
        return job(Err(StoreError::from(error))).1;
    }
    let (kept, answer) = job(Ok(&mut WriteTx { conn: tx, events }));
    let closed = if kept {
        tx.prepare_cached("RELEASE job")
            .and_then(|mut s| s.execute([]))
    } else {
        events.truncate(mark);
        tx.execute_batch("ROLLBACK TO job; RELEASE job").map(|()| 0)
    };
    match closed {
        Ok(_) => answer,
        Err(error) => {
            events.truncate(mark);
            let error = StoreError::from(error);
            Box::new(move |_| answer(Err(&error)))
        }
    }
}

/// Applies retention to the log and to stored answers; returns how many events were removed.
pub(super) fn prune(conn: &Connection, retention: Retention) -> StoreResult<u64> {
    let head = super::schema::head(conn)?;
    let by_count = head - retention.max_events.min(i64::MAX as u64) as i64;
    let cutoff_ms = now_ms() - (retention.max_age_secs.min(i64::MAX as u64 / 1000) as i64) * 1000;
    // Stored answers live as long as the log: a retry older than that is not a retry.
    conn.execute(
        "DELETE FROM nudge_idempotency WHERE created_at < ?1",
        [cutoff_ms],
    )?;
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
    Ok(removed as u64)
}
