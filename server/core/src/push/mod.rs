//! Web Push as the wake-up when no page is open: a light push (RFC 8030) names what changed,
//! the ServiceWorker refreshes it into its cache, then tells the person.
//!
//! - [`keys`]: the VAPID key pair (RFC 8292), made on first start and kept in a file, or given.
//! - [`subscriptions`]: `POST`/`DELETE /api/push/subscriptions` and `GET /api/push/key`, and
//!   where subscriptions are kept (the log's database, either backend).
//! - [`send`]: after a change commits, each subscription whose topics match and whose
//!   principal may read the topic *now* (the same [`crate::Audience`] as the stream) gets one
//!   push, encrypted `aes128gcm` (RFC 8291), carrying only
//!   `{"changes":[{"url","topic","etag"}]}` (the ETag as the stream's `changed` gives it),
//!   with `TTL`, `Urgency` and a `Topic` per topic so that the push service replaces a still
//!   undelivered push for it with the newer one. Sending never slows a write: the sender
//!   follows the hub like a stream, through a bounded queue and a bounded number of requests
//!   at once, each with a deadline; 404/410 removes the subscription, 429/5xx retries with
//!   backoff (honouring `Retry-After`) up to a bound. On PostgreSQL one node at a time sends
//!   (the one holding an advisory lock), so each push goes out once.

pub mod keys;
pub mod send;
pub mod subscriptions;

use std::path::PathBuf;
use std::time::Duration;

/// How push runs. Off unless [`crate::Settings::push`] is set.
#[derive(Debug, Clone)]
pub struct PushSettings {
    /// The VAPID `sub` claim: a `mailto:` or `https:` contact for the push services.
    pub contact: String,
    /// Where the VAPID private key is kept (PEM), made on first start when missing. On many
    /// nodes, give every node the same file.
    pub key_file: PathBuf,
    /// How long a push service keeps an undelivered push (`TTL`).
    pub ttl: Duration,
    /// Subscriptions one principal may hold (anonymous ones count together).
    pub max_per_principal: usize,
    /// Subscriptions in all.
    pub max_subscriptions: usize,
    /// Pushes waiting to be sent; more are dropped (and counted as failed).
    pub queue: usize,
    /// Requests to push services at once.
    pub concurrency: usize,
    /// Attempts per push (the first and the retries after 429/5xx).
    pub attempts: u32,
    /// Longest a request to a push service may take.
    pub timeout: Duration,
    /// Accept `http://` endpoints on loopback addresses (for tests with a local push service).
    pub allow_local_http: bool,
}

impl PushSettings {
    /// Defaults for `contact`, with the key kept in `key_file`.
    pub fn new(contact: impl Into<String>, key_file: impl Into<PathBuf>) -> Self {
        Self {
            contact: contact.into(),
            key_file: key_file.into(),
            ttl: Duration::from_secs(24 * 3600),
            max_per_principal: 10,
            max_subscriptions: 100_000,
            queue: 10_000,
            concurrency: 16,
            attempts: 4,
            timeout: Duration::from_secs(10),
            allow_local_http: false,
        }
    }
}

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use subscriptions::{PushState, SubscriptionStore};

/// The session-level advisory lock the sending node holds on PostgreSQL.
const PUSH_LOCK: i64 = 0x6e75_6467_6503;

/// Starts push for `nudge`'s parts: the key, the sender, and on PostgreSQL the claim to be
/// the node that sends.
pub(crate) fn start(
    settings: PushSettings,
    hub: crate::Hub,
    backend: &crate::OpenedBackend,
    metrics: Arc<crate::metrics::Metrics>,
) -> anyhow::Result<PushState> {
    let keys = Arc::new(keys::VapidKeys::load_or_create(&settings.key_file)?);
    let leader = Arc::new(AtomicBool::new(false));
    let store = Arc::new(match backend {
        crate::OpenedBackend::Sqlite(store) => {
            leader.store(true, Ordering::Release);
            SubscriptionStore::sqlite(store.clone())
        }
        crate::OpenedBackend::Postgres(store) => {
            tokio::spawn(claim_sending(
                store.clone(),
                leader.clone(),
                hub.shutdown_token(),
            ));
            SubscriptionStore::postgres(store)
        }
    });
    send::Sender::start(
        hub,
        keys.clone(),
        store.clone(),
        settings.clone(),
        metrics,
        leader,
    )?;
    Ok(PushState::new(keys, store, settings))
}

/// On PostgreSQL, one node sends: the one whose connection holds [`PUSH_LOCK`]. The others
/// try again every few seconds, so another takes over within them when that node goes.
async fn claim_sending(
    store: Arc<crate::store::postgres::PostgresStore>,
    leader: Arc<AtomicBool>,
    shutdown: tokio_util::sync::CancellationToken,
) {
    const EVERY: Duration = Duration::from_secs(3);
    let mut held: Option<tokio_postgres::Client> = None;
    loop {
        if held.as_ref().is_some_and(|c| c.is_closed()) {
            held = None;
            leader.store(false, Ordering::Release);
        }
        if held.is_none() {
            if let Ok(client) = store.connect().await {
                let got = client
                    .query_one("SELECT pg_try_advisory_lock($1)", &[&PUSH_LOCK])
                    .await
                    .is_ok_and(|row| row.get::<_, bool>(0));
                if got {
                    held = Some(client);
                    leader.store(true, Ordering::Release);
                }
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(EVERY) => {}
        }
    }
}
