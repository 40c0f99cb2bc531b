//! Rooms, messages and accounts on PostgreSQL, for many nodes on one database, over nudge's
//! PostgreSQL store (its log, its commit order, its follower that publishes on every node).
//!
//! - **Group commit** keeps nudge's commit lock cheap: each node has one writer task
//!   ([`write`]) that sends every waiting write as one pipelined transaction, so the lock is
//!   taken once per batch and nodes take turns batch by batch. Its SQL functions log through
//!   `nudge_log_event` ([`schema`]).
//! - **Faults.** While the database is away writes fail fast with `Unavailable` (503), and the
//!   writer reconnects with backoff.
//! - **Accounts** (`accounts`) live in the same database; membership changes go through the
//!   writer like any other logged write, with a note on their event that every node's follower
//!   hands to the access view in commit order.

mod accounts;
mod read;
pub mod schema;
mod write;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use nudge::store::postgres::{store_error, Pool, PostgresStore as Core};
use nudge::store::{LogRange, Replay};
use nudge::{EventLog, Retention, StoreError, StoreResult, TopicSet};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::{Appended, IdempotencyKey, Store};
use crate::access::AccessView;
use crate::domain::{NewMessage, PageCursor, RoomMessages, RoomName, RoomSummary};
use crate::domain::{ROOMS_TOPIC, ROOMS_URL};
pub use accounts::PostgresAccounts;
use read::Reader;
use write::{WriteJob, Writer};

/// The way to the writer task, shared by the store and its accounts; closing it (once, by the
/// store) lets the writer finish what is queued and end.
#[derive(Clone)]
struct WriteHandle(Arc<Mutex<Option<mpsc::UnboundedSender<WriteJob>>>>);

impl WriteHandle {
    /// Sends a job to the writer task and waits for its answer.
    async fn write<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<StoreResult<T>>) -> WriteJob,
    ) -> StoreResult<T> {
        let (reply, answer) = oneshot::channel();
        {
            let writer = self.0.lock().unwrap_or_else(|p| p.into_inner());
            let sender = writer.as_ref().ok_or(StoreError::Closed)?;
            sender.send(make(reply)).map_err(|_| StoreError::Closed)?;
        }
        answer.await.map_err(|_| StoreError::Closed)?
    }

    fn close(&self) {
        drop(self.0.lock().unwrap_or_else(|p| p.into_inner()).take());
    }
}

/// Watercooler's store on PostgreSQL. Cheap to share behind an `Arc`.
pub struct PostgresStore {
    core: Arc<Core>,
    writer: WriteHandle,
    writer_task: Mutex<Option<JoinHandle<()>>>,
    pool: Arc<Pool<Reader>>,
}

impl PostgresStore {
    /// The chat over nudge's store `core` (already migrated): fills in old users' name keys,
    /// makes sure `general` exists, loads who may read which room into `access`, and starts
    /// the writer (on the current runtime).
    pub async fn open(core: Arc<Core>, access: AccessView) -> StoreResult<Self> {
        let mut setup = core.connect().await?;
        accounts::backfill_name_keys(&mut setup).await?;
        setup
            .execute(
                "SELECT nudge_create_room('general', $1, $2)",
                &[&ROOMS_TOPIC, &ROOMS_URL],
            )
            .await
            .map_err(store_error)?;
        access.replace(accounts::load_view(&mut setup).await?);
        drop(setup);
        let (tx, rx) = mpsc::unbounded_channel();
        let writer = Writer::new(core.clone());
        Ok(Self {
            pool: Arc::new(Pool::new(core.connector())),
            writer: WriteHandle(Arc::new(Mutex::new(Some(tx)))),
            writer_task: Mutex::new(Some(tokio::spawn(writer.run(rx)))),
            core,
        })
    }

    /// The accounts kept in this store's database.
    pub fn accounts(&self) -> PostgresAccounts {
        PostgresAccounts::new(self.writer.clone(), self.pool.clone(), self.core.clone())
    }

    /// nudge's store underneath.
    pub fn core(&self) -> &Arc<Core> {
        &self.core
    }

    async fn write<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<StoreResult<T>>) -> WriteJob,
    ) -> StoreResult<T> {
        self.writer.write(make).await
    }
}

#[async_trait]
impl Store for PostgresStore {
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
        self.pool.get().await?.rooms().await
    }

    async fn recent(&self, room: &RoomName, count: usize) -> StoreResult<Option<RoomMessages>> {
        let count = count.min(i64::MAX as usize) as i64;
        self.pool
            .get()
            .await?
            .room_messages(room.as_str(), PageCursor::Latest, count)
            .await
    }

    async fn page(
        &self,
        room: &RoomName,
        cursor: PageCursor,
        limit: u32,
    ) -> StoreResult<Option<RoomMessages>> {
        self.pool
            .get()
            .await?
            .room_messages(room.as_str(), cursor, i64::from(limit))
            .await
    }
}

#[async_trait]
impl EventLog for PostgresStore {
    async fn replay(&self, after: i64, topics: &TopicSet, max: usize) -> StoreResult<Replay> {
        self.core.replay(after, topics, max).await
    }

    async fn log_range(&self) -> StoreResult<LogRange> {
        self.core.log_range().await
    }

    /// The log's retention, then Watercooler's: idempotency records as old as the log keeps,
    /// and expired sessions.
    async fn prune(&self, retention: Retention) -> StoreResult<u64> {
        let removed = self.core.prune(retention).await?;
        let max_age_ms = retention.max_age_secs.min(i64::MAX as u64 / 1000) as i64 * 1000;
        let reader = self.pool.get().await?;
        use nudge::store::postgres::Prepare;
        reader
            .client()
            .execute(
                "DELETE FROM idempotency WHERE created_at < nudge_now_ms() - $1",
                &[&max_age_ms],
            )
            .await
            .map_err(store_error)?;
        reader
            .client()
            .execute(
                "DELETE FROM sessions WHERE expires_at < nudge_now_ms()",
                &[],
            )
            .await
            .map_err(store_error)?;
        Ok(removed)
    }

    async fn ping(&self) -> StoreResult<()> {
        self.core.ping().await
    }

    async fn close(&self) {
        // Dropping the sender lets the writer finish what is queued and end.
        self.writer.close();
        let writer = self
            .writer_task
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(writer) = writer {
            let _ = writer.await;
        }
        self.pool.close();
        self.core.close().await;
    }
}
