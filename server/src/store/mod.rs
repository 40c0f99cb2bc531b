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

/// What a resuming stream missed, read from one snapshot of the log (see [`Store::replay`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replay {
    /// The log's range in that snapshot.
    pub range: LogRange,
    /// The events after the id on the subscribed topics that the log still holds, in id order;
    /// empty when `complete` is false.
    pub events: Vec<LoggedEvent>,
    /// False when more events than the cap were missed.
    pub complete: bool,
}

impl Replay {
    /// At most `max` of `events` (read as `max + 1` to tell), sorted by id.
    fn capped(range: LogRange, mut events: Vec<LoggedEvent>, max: usize) -> Self {
        if events.len() > max {
            return Self {
                range,
                events: Vec::new(),
                complete: false,
            };
        }
        events.sort_unstable_by_key(|e| e.id);
        Self {
            range,
            events,
            complete: true,
        }
    }
}

/// A subscription's selectors as scans of the index on (topic, id): exact topics, and each
/// prefix as the range of topics strictly between its two bounds. A selector that another
/// prefix covers is left out, so the scans are disjoint and no event is read twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TopicScan {
    /// Exact topics (`rooms/general`).
    pub exact: Vec<String>,
    /// `(lower, upper)`: a prefix `rooms/` gives `('rooms/', 'rooms0')`; the topics in between,
    /// in byte order, are exactly those longer than the prefix that start with it.
    pub ranges: Vec<(String, String)>,
}

impl TopicScan {
    pub(crate) fn of(topics: &TopicSet) -> Self {
        let prefixes: Vec<&str> = topics.prefixes().collect();
        let covered = |topic: &str| {
            prefixes
                .iter()
                .any(|p| topic.len() > p.len() && topic.starts_with(p))
        };
        Self {
            exact: topics
                .exact()
                .filter(|t| !covered(t))
                .map(str::to_owned)
                .collect(),
            ranges: prefixes
                .iter()
                .filter(|p| !covered(p))
                .map(|p| (p.to_string(), upper_bound(p)))
                .collect(),
        }
    }
}

/// The smallest string greater than every string that starts with `prefix`. Prefixes are ASCII
/// (topic selectors are) and end in `/`, so incrementing the last byte cannot overflow: the
/// bound of `rooms/` is `rooms0`.
fn upper_bound(prefix: &str) -> String {
    let mut bytes = prefix.as_bytes().to_vec();
    match bytes.last_mut() {
        Some(last) if *last < 0x7f => *last += 1,
        // Not a selector's prefix; an empty range is the safe answer.
        _ => return prefix.to_owned(),
    }
    String::from_utf8(bytes).unwrap_or_else(|_| prefix.to_owned())
}

/// The row limit that tells whether more than `max` events were missed.
fn scan_limit(max: usize) -> i64 {
    i64::try_from(max.saturating_add(1)).unwrap_or(i64::MAX)
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

    /// What a stream resuming after `after` on `topics` missed: at most `max` events, read
    /// from the index on (topic, id) so that only the subscribed topics' events are read, and
    /// the log's range from the same snapshot, so that a prune between the two cannot hide a
    /// gap: a caller resuming after an id below `range.pruned_through` has lost events, whatever
    /// `events` holds.
    async fn replay(&self, after: i64, topics: &TopicSet, max: usize) -> StoreResult<Replay>;

    /// Every logged event with an id greater than `after` on any of `topics`, in id order (no
    /// cap: for tests and tools).
    async fn events_after(&self, after: i64, topics: &TopicSet) -> StoreResult<Vec<LoggedEvent>> {
        Ok(self.replay(after, topics, usize::MAX).await?.events)
    }

    /// The range of ids a stream can resume from.
    async fn log_range(&self) -> StoreResult<LogRange>;

    /// Applies retention to the log; returns how many events were removed.
    async fn prune(&self, retention: Retention) -> StoreResult<u64>;

    /// Whether the backend answers (for readiness).
    async fn ping(&self) -> StoreResult<()>;

    /// Finishes pending writes and releases the backend.
    async fn close(&self);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(selectors: &[&str]) -> TopicScan {
        TopicScan::of(&TopicSet::parse(selectors.iter().copied()).unwrap())
    }

    #[test]
    fn a_prefix_is_the_range_up_to_its_last_byte_plus_one() {
        let s = scan(&["rooms/*", "lobby"]);
        assert_eq!(s.exact, ["lobby"]);
        assert_eq!(s.ranges, [("rooms/".to_owned(), "rooms0".to_owned())]);
        // Every topic the prefix matches lies strictly inside, and nothing else does.
        let (lo, hi) = &s.ranges[0];
        let inside = |t: &str| t > lo.as_str() && t < hi.as_str();
        for t in ["rooms/a", "rooms/zzz", "rooms/~", "rooms/a/b"] {
            assert!(inside(t), "{t}");
        }
        for t in [
            "rooms", "rooms/", "rooms0", "roomsx", "room", "rooms.x", "rooms-a",
        ] {
            assert!(!inside(t), "{t}");
        }
    }

    #[test]
    fn selectors_a_prefix_covers_are_not_scanned_twice() {
        let s = scan(&["rooms/a", "rooms/*", "rooms/b/*", "rooms", "other/x"]);
        assert_eq!(s.exact, ["rooms", "other/x"]);
        assert_eq!(s.ranges, [("rooms/".to_owned(), "rooms0".to_owned())]);
    }

    #[test]
    fn more_than_the_cap_is_incomplete_and_empty() {
        let range = LogRange {
            pruned_through: 0,
            head: 3,
        };
        let ev = |id| LoggedEvent {
            id,
            topic: "t".into(),
            url: "/u".into(),
        };
        let full = Replay::capped(range, vec![ev(3), ev(1), ev(2)], 3);
        assert!(full.complete);
        assert_eq!(
            full.events.iter().map(|e| e.id).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        let over = Replay::capped(range, vec![ev(3), ev(1), ev(2)], 2);
        assert!(!over.complete);
        assert!(over.events.is_empty());
        assert_eq!(scan_limit(usize::MAX), i64::MAX);
        assert_eq!(scan_limit(1000), 1001);
    }
}
