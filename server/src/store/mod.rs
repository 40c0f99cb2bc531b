//! The storage and fan-out engine, behind one trait so handlers never know which runs.
//!
//! A store keeps rooms, messages, the event log and idempotency records. Appending a message
//! writes the message and its event in one transaction; once that transaction is durable the
//! store hands the event to the [`Hub`](crate::hub::Hub), in commit order. The log, not the
//! process, is the truth: a subscriber that resumes reads what it missed from it.
//!
//! - [`sqlite`]: the embedded default for one node, with group commit.
//! - [`postgres`]: many nodes on one PostgreSQL database, fanned out with LISTEN/NOTIFY.
//! - [`metered`]: a decorator recording latency and errors for any backend.
//! - [`accounts`]: users, sessions and private rooms, a second trait beside [`Store`].

pub mod accounts;
pub mod metered;
pub mod postgres;
pub mod sqlite;

use std::sync::Arc;

use crate::hub::Hub;
use crate::Config;

/// Opens the store the configuration names: PostgreSQL for a `postgres://` URL, SQLite in the
/// data directory otherwise.
pub async fn open(config: &Config, hub: Hub) -> anyhow::Result<Arc<dyn Store>> {
    Ok(open_with_accounts(config, hub).await?.0)
}

/// [`open`], with the backend's accounts, which both backends keep in the same database as the
/// log.
pub async fn open_with_accounts(
    config: &Config,
    hub: Hub,
) -> anyhow::Result<(Arc<dyn Store>, Arc<dyn accounts::Accounts>)> {
    use anyhow::Context;
    match &config.database_url {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            // The URL is never in the error: it may hold a password.
            let store = postgres::PostgresStore::open(url, hub)
                .await
                .context("opening the PostgreSQL store")?;
            let accounts = Arc::new(store.accounts());
            Ok((Arc::new(store), accounts))
        }
        Some(url) => anyhow::bail!(
            "unsupported database URL scheme {:?}: use postgres://, or leave it unset for SQLite",
            url.split("://").next().unwrap_or_default()
        ),
        None => {
            let data_dir = config.data_dir.clone();
            let store =
                tokio::task::spawn_blocking(move || sqlite::SqliteStore::open(&data_dir, hub))
                    .await?
                    .with_context(|| {
                        format!("opening the store in {}", config.data_dir.display())
                    })?;
            let accounts = Arc::new(store.accounts());
            Ok((Arc::new(store), accounts))
        }
    }
}

use async_trait::async_trait;

use crate::domain::{Message, NewMessage, PageCursor, RoomMessages, RoomName, RoomSummary};
use crate::topic::TopicSet;

/// Failures of a store. Handlers map them to HTTP in one place ([`crate::error`]).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The idempotency key was used before with a different request.
    #[error("idempotency key reused with a different request")]
    IdempotencyConflict,
    /// The backend cannot be reached right now; a retry may succeed.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A database error.
    #[error("database: {0}")]
    Database(String),
    /// The store is shutting down or its worker is gone.
    #[error("store closed")]
    Closed,
}

/// The shorthand every store method returns.
pub type StoreResult<T> = Result<T, StoreError>;

/// One entry of the event log: "the resource at `url` changed".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedEvent {
    /// Increasing in commit order.
    pub id: i64,
    /// The topic it was published on, e.g. `rooms/general`.
    pub topic: String,
    /// The URL a client should fetch again.
    pub url: String,
}

/// A client-chosen key that makes a retried write take effect once.
#[derive(Debug, Clone)]
pub struct IdempotencyKey(pub String);

/// The answer to an append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// The stored message (the first one, for a replayed idempotent request).
    pub message: Message,
    /// True when an earlier request with the same key already stored it.
    pub replayed: bool,
}

/// What the log holds: resuming after any id in `pruned_through..=head` misses nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogRange {
    /// The largest id removed by retention (0 when nothing was removed).
    pub pruned_through: i64,
    /// The largest id committed (0 when the log is empty).
    pub head: i64,
}

/// How long the log keeps events.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Keep at most this many events.
    pub max_events: u64,
    /// Drop events older than this many seconds.
    pub max_age_secs: u64,
}

/// The storage and fan-out engine.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Stores a message and its event atomically, creating the room if needed. With a key, a
    /// retry of the same request returns the first answer and stores nothing; the same key with
    /// another request fails with [`StoreError::IdempotencyConflict`].
    async fn append_message(
        &self,
        message: NewMessage,
        key: Option<IdempotencyKey>,
    ) -> StoreResult<Appended>;

    /// Creates a room; returns false when it already existed.
    async fn create_room(&self, room: &RoomName) -> StoreResult<bool>;

    /// All rooms, by name.
    async fn rooms(&self) -> StoreResult<Vec<RoomSummary>>;

    /// The newest `count` messages of a room, oldest first; `None` when the room does not exist.
    async fn recent(&self, room: &RoomName, count: usize) -> StoreResult<Option<RoomMessages>>;

    /// A page of messages, oldest first; `None` when the room does not exist.
    async fn page(
        &self,
        room: &RoomName,
        cursor: PageCursor,
        limit: u32,
    ) -> StoreResult<Option<RoomMessages>>;

    /// Logged events with an id greater than `after` on any of `topics`, in id order.
    async fn events_after(&self, after: i64, topics: &TopicSet) -> StoreResult<Vec<LoggedEvent>>;

    /// The range of ids a stream can resume from.
    async fn log_range(&self) -> StoreResult<LogRange>;

    /// Applies retention to the log; returns how many events were removed.
    async fn prune(&self, retention: Retention) -> StoreResult<u64>;

    /// Whether the backend answers (for readiness).
    async fn ping(&self) -> StoreResult<()>;

    /// Finishes pending writes and releases the backend.
    async fn close(&self);
}
