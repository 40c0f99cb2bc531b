//! The embedded store: one SQLite file in WAL mode with `synchronous=FULL`, so a write is on
//! disk before its answer and before its nudge.
//!
//! Writes go through one writer thread that practises group commit: it takes every write that
//! is waiting, runs each (the app's closure: its statements and the changes it logs) inside a
//! savepoint of one transaction, and commits them with one fsync. Under load that turns
//! hundreds of fsyncs into one while no write waits longer than a commit. Because one thread
//! commits, event ids increase in commit order, and the thread hands each batch's events to
//! the hub in that order, after the commit. Reads use their own connections (WAL lets them run
//! beside the writer) on tokio's blocking pool.

mod replay;
mod schema;
mod write;

use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags};
use tokio::sync::{oneshot, Semaphore};

use super::{
    EventLog, LogRange, Migrations, Replay, Retention, StoreError, StoreResult, TopicScan,
};
use crate::hub::Hub;
use crate::topic::TopicSet;
use write::{WriteJob, Writer};
pub use write::{WriteTx, WriterSettings};

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

/// The way to the writer thread and the pool of read connections.
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
    /// Opens (creating if needed) `nudge.sqlite3` in `data_dir`, migrates nudge's tables and
    /// then `apps`', and starts the writer thread that publishes into `hub`.
    pub fn open(data_dir: &Path, hub: Hub, apps: &[Migrations]) -> StoreResult<Self> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| StoreError::Database(format!("creating {}: {e}", data_dir.display())))?;
        let path = data_dir.join("nudge.sqlite3");
        let mut conn = Connection::open(&path)?;
        schema::configure_writer(&conn)?;
        schema::migrate(&mut conn, apps)?;
        hub.set_head(schema::head(&conn)?);

        let (tx, rx) = mpsc::channel();
        let writer = Writer::new(conn, hub);
        let worker = std::thread::Builder::new()
            .name("nudge-sqlite-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| StoreError::Database(format!("spawning the writer: {e}")))?;
        Ok(Self {
            conns: Conns {
                path,
                writer: Arc::new(Mutex::new(Some(tx))),
                readers: Arc::new(Mutex::new(Vec::new())),
                read_permits: Arc::new(Semaphore::new(MAX_READERS)),
            },
            worker: Mutex::new(Some(worker)),
        })
    }

    /// Runs `write` on the writer's connection, inside a savepoint of the next batch's
    /// transaction, and answers once that transaction is durable. What it logs through its
    /// [`WriteTx`] commits with its own statements or not at all, and is published after the
    /// commit, in commit order. An `Err` from `write` rolls its savepoint back (nothing it did
    /// stays, the rest of the batch is unaffected) and is returned as it is.
    ///
    /// `write` runs on the writer thread, which every write shares: it must not block on
    /// anything but its statements.
    pub async fn write<T, E>(
        &self,
        write: impl FnOnce(&mut WriteTx<'_>) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel::<Result<T, E>>();
        let job: WriteJob = Box::new(move |tx| {
            let result = match tx {
                Ok(tx) => write(tx),
                Err(error) => Err(E::from(error)),
            };
            let kept = result.is_ok();
            let answer: write::Answer = Box::new(move |committed| {
                let result = match committed {
                    Ok(()) => result,
                    Err(error) => Err(E::from(StoreError::Database(error.to_string()))),
                };
                // A caller that went away no longer needs the answer; the write itself is
                // durable either way.
                let _ = reply.send(result);
            });
            (kept, answer)
        });
        self.conns.send(job).map_err(E::from)?;
        answer.await.map_err(|_| E::from(StoreError::Closed))?
    }

    /// Runs `read` on a pooled read connection, inside one read transaction so that everything
    /// it reads comes from one snapshot. At most a few reads run at once; more wait.
    pub async fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&rusqlite::Transaction<'_>) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        self.conns.read(read).await
    }

    /// The query plan SQLite chooses for [`EventLog::replay`] (`EXPLAIN QUERY PLAN`, one line per
    /// step), for tests and diagnosis: every step should search the index `events_by_topic`.
    pub async fn replay_plan(&self, after: i64, topics: &TopicSet) -> StoreResult<Vec<String>> {
        let scan = TopicScan::of(topics);
        self.read(move |tx| replay::plan(tx, after, &scan)).await
    }

    /// The durability settings the writer's connection runs with, as SQLite reports them:
    /// `journal_mode` (`wal`), `synchronous` (2, FULL) and `foreign_keys` (1).
    pub async fn writer_settings(&self) -> StoreResult<WriterSettings> {
        self.write(|tx| write::settings(tx.conn())).await
    }
}

impl Conns {
    /// Queues a job for the writer thread.
    fn send(&self, job: WriteJob) -> StoreResult<()> {
        let writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let sender = writer.as_ref().ok_or(StoreError::Closed)?;
        sender.send(job).map_err(|_| StoreError::Closed)
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
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[async_trait]
impl EventLog for SqliteStore {
    async fn replay(&self, after: i64, topics: &TopicSet, max: usize) -> StoreResult<Replay> {
        let scan = TopicScan::of(topics);
        self.read(move |tx| replay::read(tx, after, &scan, max))
            .await
    }

    async fn log_range(&self) -> StoreResult<LogRange> {
        self.read(|tx| schema::log_range(tx)).await
    }

    async fn prune(&self, retention: Retention) -> StoreResult<u64> {
        self.write(move |tx| write::prune(tx.conn(), retention))
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
