//! The PostgreSQL store, for many nodes on one database: the event log, not a process, holds
//! the state, so any node serves any client.
//!
//! - **Commit order.** Event ids come from a sequence, but a sequence alone would hand out 41
//!   and 42 to two transactions that may commit 42 first, and a reader resuming after 42 would
//!   skip 41 for ever. So every write transaction takes one transaction-level advisory lock
//!   ([`schema::COMMIT_LOCK`]) before it takes any id, and holds it until its commit: ids
//!   increase in commit order across all nodes, and a reader that sees an id sees every
//!   smaller one it will ever see.
//! - **Group commit** keeps that lock cheap: each node has one writer task ([`write`]) that
//!   sends every waiting write as one pipelined transaction, so the lock is taken once per
//!   batch and nodes take turns batch by batch.
//! - **Fan-out.** A commit `NOTIFY`s the new head id (a wake-up only); every node's follower
//!   ([`follow`]) then reads the log after the last id it published and publishes in id order.
//!   The follower is the only publisher, also for local writes (the writer pokes it right after
//!   its commit), so nothing is published twice or out of order, and a missed `NOTIFY` (a lost
//!   connection) is made good from the log after reconnecting.
//! - **Faults.** Every wait is bounded ([`conn`]); while the database is away writes and reads
//!   fail fast with `Unavailable` (503), and the writer and follower reconnect with backoff.
//! - **Accounts** ([`accounts`]) live in the same database; membership changes go through the
//!   writer like any other logged write, and every node's follower applies them to its access
//!   view in commit order.
//! - **Migrations** are versioned and run under a session advisory lock ([`schema`]), so nodes
//!   that start together migrate once.

mod accounts;
mod conn;
mod follow;
mod read;
mod schema;
mod write;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot, watch, Notify};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{
    Appended, IdempotencyKey, LogRange, Replay, Retention, Store, StoreError, StoreResult,
    TopicScan,
};
use crate::domain::{NewMessage, PageCursor, RoomMessages, RoomName, RoomSummary};
use crate::hub::Hub;
use crate::topic::TopicSet;
pub use accounts::PostgresAccounts;
use conn::{Connector, Pool};
use follow::Follower;
use write::{WriteJob, Writer};

/// The channel commits notify on; the payload is the new head id.
const NOTIFY_CHANNEL: &str = "nudge_events";
/// The channel a sign-out notifies on; the payload is the session's token hash in hex.
const SESSIONS_CHANNEL: &str = "nudge_sessions";

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

/// The PostgreSQL store. Cheap to share behind an `Arc`.
pub struct PostgresStore {
    writer: WriteHandle,
    writer_task: Mutex<Option<JoinHandle<()>>>,
    follower_task: Mutex<Option<JoinHandle<()>>>,
    shutdown: CancellationToken,
    pool: Arc<Pool>,
    published: watch::Receiver<i64>,
}

impl PostgresStore {
    /// Connects to `url`, migrates the schema, makes sure `general` exists, and starts the
    /// writer and the follower (on the current runtime) that publishes into `hub`.
    pub async fn open(url: &str, hub: Hub) -> StoreResult<Self> {
        let connector = Arc::new(Connector::new(url)?);
        let mut setup = connector.connect().await?;
        schema::migrate(&mut setup).await?;
        // The view and the head from one snapshot: the follower applies every change after it.
        let (head, view) = accounts::load_view(&mut setup).await?;
        drop(setup);
        hub.set_head(head);
        hub.access().replace(view);

        let committed = Arc::new(Notify::new());
        let shutdown = CancellationToken::new();
        let (tx, rx) = mpsc::unbounded_channel();
        let writer = Writer::new(connector.clone(), committed.clone());
        let (published_tx, published) = watch::channel(head);
        let follower = Follower::new(
            connector.clone(),
            hub,
            head,
            committed,
            shutdown.clone(),
            published_tx,
        );
        Ok(Self {
            writer: WriteHandle(Arc::new(Mutex::new(Some(tx)))),
            writer_task: Mutex::new(Some(tokio::spawn(writer.run(rx)))),
            follower_task: Mutex::new(Some(tokio::spawn(follower.run()))),
            shutdown,
            pool: Arc::new(Pool::new(connector)),
            published,
        })
    }

    /// The accounts kept in this store's database.
    pub fn accounts(&self) -> PostgresAccounts {
        PostgresAccounts::new(
            self.writer.clone(),
            self.pool.clone(),
            self.published.clone(),
        )
    }

    /// PostgreSQL's `EXPLAIN` of [`Store::replay`]'s statement for these arguments, for tests
    /// and diagnosis: the events should be read through the index `events_by_topic`.
    pub async fn replay_plan(&self, after: i64, topics: &TopicSet) -> StoreResult<Vec<String>> {
        let scan = TopicScan::of(topics);
        self.pool.get().await?.replay_plan(after, &scan).await
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

    async fn replay(&self, after: i64, topics: &TopicSet, max: usize) -> StoreResult<Replay> {
        let scan = TopicScan::of(topics);
        self.pool.get().await?.replay(after, &scan, max).await
    }

    async fn log_range(&self) -> StoreResult<LogRange> {
        self.pool.get().await?.log_range().await
    }

    async fn prune(&self, retention: Retention) -> StoreResult<u64> {
        self.write(|reply| WriteJob::Prune { retention, reply })
            .await
    }

    async fn ping(&self) -> StoreResult<()> {
        self.pool.get().await?.ping().await
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
        self.shutdown.cancel();
        let follower = self
            .follower_task
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(follower) = follower {
            let _ = follower.await;
        }
        self.pool.close();
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        // The follower would otherwise keep reconnecting for as long as the runtime lives.
        self.shutdown.cancel();
    }
}
