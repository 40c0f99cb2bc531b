//! The embedded store: one SQLite file in WAL mode with `synchronous=FULL`, so a write is on
//! disk before its 201 and before its notification.
//!
//! Writes go through one writer thread that practises group commit: it takes every write that
//! is waiting, applies each inside a savepoint of one transaction, and commits them with one
//! fsync. Under load that turns hundreds of fsyncs into one while no write waits longer than a
//! commit. Because one thread commits, event ids increase in commit order, and the thread hands
//! each batch's events to the hub in that order. Reads use their own connections (WAL lets
//! them run beside the writer) on tokio's blocking pool.
//!
//! Accounts and private rooms ([`accounts`]) share the writer and the readers.

pub mod accounts;
mod replay;
mod schema;
mod write;

use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use tokio::sync::{oneshot, Semaphore};

use super::{
    Appended, IdempotencyKey, LogRange, Replay, Retention, Store, StoreError, StoreResult,
    TopicScan,
};
use crate::domain::{Message, NewMessage, PageCursor, RoomMessages, RoomName, RoomSummary};
use crate::hub::Hub;
use crate::topic::TopicSet;
pub use write::WriterSettings;
use write::{WriteJob, Writer};

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Database(e.to_string())
    }
}

/// The embedded store. Cheap to share behind an `Arc`.
pub struct SqliteStore {
    conns: Conns,
    worker: Mutex<Option<JoinHandle<()>>>,
}

/// The way to the writer thread and the pool of read connections, shared by the store and
/// its accounts.
#[derive(Clone)]
struct Conns {
    path: PathBuf,
    writer: Arc<Mutex<Option<mpsc::Sender<WriteJob>>>>,
    readers: Arc<Mutex<Vec<Connection>>>,
    /// One per read in progress: bounds the read connections (each with its own page cache)
    /// and the blocking threads running them, however many requests read at once.
    read_permits: Arc<Semaphore>,
}

/// Reads that run at once; more wait their turn. With WAL, readers do not block each other or
/// the writer, so a few per core keep the cores busy.
const MAX_READERS: usize = 8;

impl SqliteStore {
    /// Opens (creating if needed) `nudge.sqlite3` in `data_dir`, migrates it, makes sure the
    /// `general` room exists, and starts the writer thread that publishes into `hub`.
    pub fn open(data_dir: &Path, hub: Hub) -> StoreResult<Self> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| StoreError::Database(format!("creating {}: {e}", data_dir.display())))?;
        let path = data_dir.join("nudge.sqlite3");
        let mut conn = Connection::open(&path)?;
        schema::configure_writer(&conn)?;
        schema::migrate(&mut conn)?;
        write::ensure_general(&mut conn)?;
        let head = schema::head(&conn)?;
        hub.set_head(head);
        hub.access().replace(accounts::load_view(&conn)?);

        let (tx, rx) = mpsc::channel();
        let writer = Writer::new(conn, hub);
        let worker = std::thread::Builder::new()
            .name("nudge-sqlite-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| StoreError::Database(format!("spawning the writer: {e}")))?;
        let store = Self {
            conns: Conns {
                path,
                writer: Arc::new(Mutex::new(Some(tx))),
                readers: Arc::new(Mutex::new(Vec::new())),
                read_permits: Arc::new(Semaphore::new(MAX_READERS)),
            },
            worker: Mutex::new(Some(worker)),
        };
        Ok(store)
    }

    /// The accounts kept in the same database, through the same writer.
    pub fn accounts(&self) -> accounts::SqliteAccounts {
        accounts::SqliteAccounts::new(self.conns.clone())
    }

    /// The query plan SQLite chooses for [`Store::replay`] (`EXPLAIN QUERY PLAN`, one line per
    /// step), for tests and diagnosis: every step should search the index `events_by_topic`.
    pub async fn replay_plan(&self, after: i64, topics: &TopicSet) -> StoreResult<Vec<String>> {
        let scan = TopicScan::of(topics);
        self.read(move |tx| replay::plan(tx, after, &scan)).await
    }

    /// The durability settings the writer's connection runs with, as SQLite reports them:
    /// `journal_mode` (`wal`), `synchronous` (2, FULL) and `foreign_keys` (1).
    pub async fn writer_settings(&self) -> StoreResult<WriterSettings> {
        self.conns
            .send(|reply| WriteJob::Settings { reply })
            .await?
    }

    async fn write<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<StoreResult<T>>) -> WriteJob,
    ) -> StoreResult<T> {
        self.conns.write(make).await
    }

    async fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&rusqlite::Transaction<'_>) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        self.conns.read(read).await
    }
}

impl Conns {
    /// Sends a job to the writer thread and waits for its answer.
    async fn write<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<StoreResult<T>>) -> WriteJob,
    ) -> StoreResult<T> {
        self.send(make).await?
    }

    /// [`Conns::write`] for a job whose answer is of any type.
    async fn send<R>(&self, make: impl FnOnce(oneshot::Sender<R>) -> WriteJob) -> StoreResult<R> {
        let (reply, answer) = oneshot::channel();
        {
            let writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
            let sender = writer.as_ref().ok_or(StoreError::Closed)?;
            sender.send(make(reply)).map_err(|_| StoreError::Closed)?;
        }
        answer.await.map_err(|_| StoreError::Closed)
    }

    /// Runs `read` on a pooled read connection, inside one read transaction so that everything
    /// it reads comes from one snapshot.
    async fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&rusqlite::Transaction<'_>) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let permit = self
            .read_permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Closed)?;
        let readers = self.readers.clone();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let pooled = readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let mut conn = match pooled {
                Some(conn) => conn,
                None => {
                    let conn = Connection::open_with_flags(
                        &path,
                        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                    )?;
                    conn.busy_timeout(Duration::from_secs(5))?;
                    conn
                }
            };
            let result = {
                let tx = conn.transaction()?;
                let result = read(&tx);
                tx.finish()?;
                result
            };
            readers.lock().unwrap_or_else(|p| p.into_inner()).push(conn);
            result
        })
        .await
        .map_err(|e| StoreError::Database(format!("read task failed: {e}")))?
    }
}

/// Milliseconds since the Unix epoch, as stored.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
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
        self.write(|reply| WriteJob::Append {
            message,
            key,
            reply,
        })
        .await
    }

    async fn create_room(&self, room: &RoomName) -> StoreResult<bool> {
        let room = room.clone();
        self.write(|reply| WriteJob::CreateRoom { room, reply })
            .await
    }

    async fn rooms(&self) -> StoreResult<Vec<RoomSummary>> {
        self.read(|tx| {
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
        self.read(move |tx| {
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

    async fn replay(&self, after: i64, topics: &TopicSet, max: usize) -> StoreResult<Replay> {
        let scan = TopicScan::of(topics);
        self.read(move |tx| replay::read(tx, after, &scan, max))
            .await
    }

    async fn log_range(&self) -> StoreResult<LogRange> {
        self.read(|tx| schema::log_range(tx)).await
    }

    async fn prune(&self, retention: Retention) -> StoreResult<u64> {
        self.write(|reply| WriteJob::Prune { retention, reply })
            .await
    }

    async fn ping(&self) -> StoreResult<()> {
        self.read(|tx| Ok(tx.query_row("SELECT 1", [], |_| Ok(()))?))
            .await
    }

    async fn close(&self) {
        // Dropping the sender lets the writer finish what is queued and end.
        drop(
            self.conns
                .writer
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take(),
        );
        let worker = self.worker.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(worker) = worker {
            let _ = tokio::task::spawn_blocking(move || worker.join()).await;
        }
        self.conns
            .readers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}
