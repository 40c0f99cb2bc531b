//! The PostgreSQL store, for many nodes on one database: the event log, not a process, holds
//! the state, so any node serves any client.
//!
//! - **Logging in the app's transaction.** The app holds its own transaction (on a connection
//!   from [`PostgresStore::connect`] or any of its own) and logs what changed in it with
//!   [`log_change`] (the SQL function `nudge_log_event`, which a statement or a function of the
//!   app's may also call): the app's rows and the log entries commit together or not at all.
//! - **Commit order.** Event ids come from a sequence, but a sequence alone would hand out 41
//!   and 42 to two transactions that may commit 42 first, and a reader resuming after 42 would
//!   skip 41 for ever. So `nudge_log_event` takes one transaction-level advisory lock
//!   ([`schema::COMMIT_LOCK`]) before it takes an id, held until the commit: ids increase in
//!   commit order across all nodes, and a reader that sees an id sees every smaller one it will
//!   ever see. An app that batches many writes into one transaction (group commit) takes the
//!   lock once per batch.
//! - **Fan-out.** `nudge_log_event` `NOTIFY`s at the commit (a wake-up only); every node's
//!   follower (`follow`) then reads the log after the last id it published and publishes in
//!   id order. The follower is the only publisher, also for local writes ([`PostgresStore::wake`]
//!   saves the notification's round trip), so nothing is published twice or out of order, and
//!   a missed `NOTIFY` (a lost connection) is made good from the log after reconnecting.
//! - **Faults.** Every wait is bounded ([`conn`]); while the database is away reads fail fast
//!   with `Unavailable` (503), and the follower reconnects with backoff.
//! - **Migrations** are versioned per component and run under a session advisory lock
//!   ([`schema`]), so nodes that start together migrate once.

pub mod conn;
mod follow;
mod read;
pub mod schema;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tokio_postgres::GenericClient;
use tokio_util::sync::CancellationToken;

use super::{EventLog, LogRange, Migrations, Replay, Retention, StoreResult, TopicScan};
use crate::audience::SessionKey;
use crate::hub::Hub;
use crate::topic::TopicSet;
pub use conn::{store_error, Connector, Pool, Pooled, Prepare};
use follow::Follower;
use read::LogReader;

/// The channel commits notify on (a wake-up; the payload means nothing).
const NOTIFY_CHANNEL: &str = "nudge_events";
/// The channel an ended session notifies on (see [`notify_session_ended`]); the payload is
/// the session's key in hex.
pub const SESSIONS_CHANNEL: &str = "nudge_sessions";

/// Logs "the resource at `url` changed" on `topic` inside the transaction `tx` holds, with an
/// optional note for the app's [`crate::Audience::committed`]; returns the event's id. The
/// event is published after the commit, in commit order, on every node; a rollback leaves no
/// trace. Takes the commit lock: keep the rest of the transaction short after the first call.
pub async fn log_change(
    tx: &impl GenericClient,
    topic: &str,
    url: &str,
    note: Option<&str>,
) -> StoreResult<i64> {
    let row = tx
        .query_one("SELECT nudge_log_event($1, $2, $3)", &[&topic, &url, &note])
        .await
        .map_err(store_error)?;
    Ok(row.get(0))
}

/// Ends the streams opened with session `key` on every node once `tx` commits (e.g. in the
/// transaction that deletes a signed-out session).
pub async fn notify_session_ended(tx: &impl GenericClient, key: &SessionKey) -> StoreResult<()> {
    let hex: String = key.0.iter().map(|b| format!("{b:02x}")).collect();
    tx.execute("SELECT pg_notify($1, $2)", &[&SESSIONS_CHANNEL, &hex])
        .await
        .map_err(store_error)?;
    Ok(())
}

/// The PostgreSQL store. Cheap to share behind an `Arc`.
pub struct PostgresStore {
    connector: Arc<Connector>,
    follower_task: Mutex<Option<JoinHandle<()>>>,
    shutdown: CancellationToken,
    pool: Pool<LogReader>,
    published: watch::Receiver<i64>,
    wake: Arc<Notify>,
}

impl PostgresStore {
    /// Connects to `url`, migrates nudge's tables and then `apps`', and starts the follower
    /// (on the current runtime) that publishes into `hub` every event after the head it reads
    /// here. An app that loads its audience's view after this sees every later change again in
    /// [`crate::Audience::committed`], and should skip those its view already holds.
    pub async fn open(url: &str, hub: Hub, apps: &[Migrations]) -> StoreResult<Self> {
        let connector = Arc::new(Connector::new(url)?);
        let mut setup = connector.connect().await?;
        schema::migrate(&mut setup, apps).await?;
        drop(setup);
        let pool = Pool::<LogReader>::new(connector.clone());
        let head = pool.get().await?.log_range().await?.head;
        hub.set_head(head);

        let wake = Arc::new(Notify::new());
        let shutdown = CancellationToken::new();
        let (published_tx, published) = watch::channel(head);
        let follower = Follower::new(
            connector.clone(),
            hub,
            head,
            wake.clone(),
            shutdown.clone(),
            published_tx,
        );
        Ok(Self {
            connector,
            follower_task: Mutex::new(Some(tokio::spawn(follower.run()))),
            shutdown,
            pool,
            published,
            wake,
        })
    }

    /// A new connection of the app's own (each wait bounded), e.g. for a transaction that
    /// logs with [`log_change`], or for a pool of the app's.
    pub async fn connect(&self) -> StoreResult<tokio_postgres::Client> {
        self.connector.connect().await
    }

    /// The connector, for a [`Pool`] of the app's own read connections.
    pub fn connector(&self) -> Arc<Connector> {
        self.connector.clone()
    }

    /// Wakes this node's follower: call it after a commit that logged, to publish without
    /// waiting for the notification's round trip.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Waits until this node has published every event up to `id` (so that the audience has
    /// seen a change before the request that made it is answered). Returns at once on
    /// shutdown.
    pub async fn published(&self, id: i64) {
        self.wake();
        let mut published = self.published.clone();
        let _ = published.wait_for(|&p| p >= id).await;
    }

    /// Logs a change on its own, in a transaction of its own, on a pooled connection (a new
    /// connection per change would cost a connect and an authentication each).
    pub(crate) async fn changed(&self, topic: &str, url: &str) -> StoreResult<i64> {
        log_change(self.pool.get().await?.client(), topic, url, None).await
    }

    /// PostgreSQL's `EXPLAIN` of [`EventLog::replay`]'s statement for these arguments, for
    /// tests and diagnosis: the events should be read through the index `events_by_topic`.
    pub async fn replay_plan(&self, after: i64, topics: &TopicSet) -> StoreResult<Vec<String>> {
        let scan = TopicScan::of(topics);
        self.pool.get().await?.replay_plan(after, &scan).await
    }
}

#[async_trait]
impl EventLog for PostgresStore {
    async fn replay(&self, after: i64, topics: &TopicSet, max: usize) -> StoreResult<Replay> {
        let scan = TopicScan::of(topics);
        self.pool.get().await?.replay(after, &scan, max).await
    }

    async fn log_range(&self) -> StoreResult<LogRange> {
        self.pool.get().await?.log_range().await
    }

    async fn prune(&self, retention: Retention) -> StoreResult<u64> {
        let max_events = retention.max_events.min(i64::MAX as u64) as i64;
        let max_age_ms = retention.max_age_secs.min(i64::MAX as u64 / 1000) as i64 * 1000;
        self.pool.get().await?.prune(max_events, max_age_ms).await
    }

    async fn ping(&self) -> StoreResult<()> {
        self.pool.get().await?.ping().await
    }

    async fn close(&self) {
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
