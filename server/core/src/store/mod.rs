//! The event log: what changed, in commit order, on the embedded default (SQLite) or on
//! PostgreSQL, with the app's own tables in the same database so that an app's rows and the
//! log entry naming them commit together or not at all.
//!
//! A write logs "the resource at `url` changed" on a topic; once its transaction is durable the
//! store hands the event to the [`Hub`](crate::hub::Hub), in commit order. The log, not the
//! process, is the truth: a stream that resumes reads what it missed from it.
//!
//! - [`sqlite`]: one node, one file, a writer thread with group commit that runs the app's
//!   writes as closures inside its transaction.
//! - [`postgres`]: many nodes on one database; the app logs inside the transactions it holds,
//!   every node's follower publishes from the log.
//! - [`EventLog`]: what the stream reads, the same on both.

pub mod postgres;
pub mod sqlite;

use async_trait::async_trait;

use crate::topic::TopicSet;

/// Failures of a store. Handlers map them to HTTP in one place ([`crate::error`]): 422 for a
/// reused key, 503 for `Unavailable`, 500 otherwise.
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
    /// The topic it was published on, e.g. `todos`.
    pub topic: String,
    /// The URL a client should fetch again.
    pub url: String,
    /// The app's note for its [`crate::Audience::committed`] (never sent to clients); `None`
    /// where it was not read (a replay).
    pub note: Option<String>,
}

/// An app's own tables: steps run in order after nudge's, each once, each in a transaction,
/// on the backend in use (its version is kept per `component` in `nudge_migrations`).
#[derive(Debug, Clone, Copy)]
pub struct Migrations {
    /// A name of the app's own, e.g. `todos`.
    pub component: &'static str,
    /// SQLite's steps.
    pub sqlite: &'static [&'static str],
    /// PostgreSQL's steps.
    pub postgres: &'static [&'static str],
}

/// What the log holds: resuming after any id in `pruned_through..=head` misses nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogRange {
    /// The largest id removed by retention (0 when nothing was removed).
    pub pruned_through: i64,
    /// The largest id committed (0 when the log is empty).
    pub head: i64,
}

/// What a resuming stream missed, read from one snapshot of the log (see [`EventLog::replay`]).
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
    /// Exact topics (`lists/general`).
    pub exact: Vec<String>,
    /// `(lower, upper)`: a prefix `lists/` gives `('lists/', 'lists0')`; the topics in between,
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
/// bound of `lists/` is `lists0`.
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

/// What the event stream reads, on either backend.
#[async_trait]
pub trait EventLog: Send + Sync + 'static {
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

    /// Applies retention to the log (and to stored answers); returns how many events were
    /// removed.
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
        let s = scan(&["lists/*", "lobby"]);
        assert_eq!(s.exact, ["lobby"]);
        assert_eq!(s.ranges, [("lists/".to_owned(), "lists0".to_owned())]);
        // Every topic the prefix matches lies strictly inside, and nothing else does.
        let (lo, hi) = &s.ranges[0];
        let inside = |t: &str| t > lo.as_str() && t < hi.as_str();
        for t in ["lists/a", "lists/zzz", "lists/~", "lists/a/b"] {
            assert!(inside(t), "{t}");
        }
        for t in [
            "lists", "lists/", "lists0", "listsx", "list", "lists.x", "lists-a",
        ] {
            assert!(!inside(t), "{t}");
        }
    }

    #[test]
    fn selectors_a_prefix_covers_are_not_scanned_twice() {
        let s = scan(&["lists/a", "lists/*", "lists/b/*", "lists", "other/x"]);
        assert_eq!(s.exact, ["lists", "other/x"]);
        assert_eq!(s.ranges, [("lists/".to_owned(), "lists0".to_owned())]);
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
            note: None,
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
