//! Rooms and messages, and the accounts beside them, on either of nudge's backends: each write
//! runs in nudge's transaction (on SQLite, a closure on its writer; on PostgreSQL, SQL
//! functions that log through `nudge_log_event`), so a message and the event naming its room
//! commit together, and the nudge goes out after the commit, in commit order.
//!
//! - [`sqlite`]: the embedded default, through nudge's writer thread (group commit).
//! - [`postgres`]: many nodes, with a writer task of its own that batches messages.
//! - [`metered`]: a decorator recording latency and errors for any backend.
//! - [`accounts`]: users, sessions and private rooms, a second trait beside [`Store`].

pub mod accounts;
pub mod metered;
pub mod postgres;
pub mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use nudge::{EventLog, Migrations, Nudge};
pub use nudge::{Retention, StoreError, StoreResult};

use crate::access::{AccessView, RoomAudience};
use crate::domain::{Message, NewMessage, PageCursor, RoomMessages, RoomName, RoomSummary};

/// Watercooler's tables on both backends, migrated after nudge's.
pub const MIGRATIONS: Migrations = Migrations {
    component: "watercooler",
    sqlite: sqlite::schema::MIGRATIONS,
    postgres: postgres::schema::MIGRATIONS,
};

/// A client-chosen key that makes a retried message take effect once.
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

/// Rooms and messages, with the log they are announced in.
#[async_trait]
pub trait Store: EventLog {
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
}

/// Where Watercooler keeps its data.
#[derive(Debug, Clone)]
pub enum Backend {
    /// The embedded default: SQLite in this directory.
    Sqlite(std::path::PathBuf),
    /// PostgreSQL at this URL.
    Postgres(String),
}

/// nudge's default settings, with `buffer` events buffered per stream (for tests and tools).
pub fn settings_with_buffer(buffer: usize) -> nudge::Settings {
    nudge::Settings {
        subscriber_buffer: buffer,
        ..nudge::Settings::default()
    }
}

/// nudge opened with Watercooler's tables and audience, and the chat's stores over it.
#[derive(Clone)]
pub struct Opened {
    /// nudge itself.
    pub nudge: Nudge,
    /// Rooms and messages.
    pub store: Arc<dyn Store>,
    /// Users, sessions and private rooms.
    pub accounts: Arc<dyn accounts::Accounts>,
    /// Who may read which room.
    pub access: AccessView,
}

/// Opens nudge on `backend` with `settings`, migrates Watercooler's tables, makes sure the
/// `general` room exists and loads who may read which room.
pub async fn open(backend: Backend, settings: nudge::Settings) -> anyhow::Result<Opened> {
    let access = AccessView::default();
    let audience = Arc::new(RoomAudience::new(access.clone()));
    let builder = Nudge::builder()
        .settings(settings)
        .audience(audience.clone())
        .migrations(MIGRATIONS);
    let builder = match &backend {
        Backend::Sqlite(dir) => builder.sqlite(dir.clone()),
        Backend::Postgres(url) => builder.postgres(url.clone()),
    };
    let nudge = builder.build().await?;
    let (store, accounts): (Arc<dyn Store>, Arc<dyn accounts::Accounts>) =
        match (nudge.sqlite(), nudge.postgres()) {
            (Some(core), _) => {
                let store = sqlite::SqliteStore::open(core.clone(), access.clone()).await?;
                let accounts = Arc::new(store.accounts());
                (Arc::new(store), accounts)
            }
            (None, Some(core)) => {
                let store = postgres::PostgresStore::open(core.clone(), access.clone()).await?;
                let accounts = Arc::new(store.accounts());
                (Arc::new(store), accounts)
            }
            (None, None) => return Err(StoreError::Closed.into()),
        };
    audience.set_accounts(accounts.clone());
    Ok(Opened {
        nudge,
        store,
        accounts,
        access,
    })
}
