//! nudge's ServiceWorker: keeps a copy of every non-ephemeral response, answers from it when
//! the network is gone, and refreshes it when the server nudges.
//!
//! Shaped like Workbox. The JS loader (`www/sw.js`) instantiates this module synchronously
//! and hands every event to [`worker`]:
//!
//! - [`worker`]: the entry points (`install`, `activate`, `fetch`, `message`).
//! - [`config`]: nudge's route table, the one place that says which URL gets which strategy.
//! - [`table`]: route tables given as JSON (`self.NUDGE_ROUTES`), for other apps (serde).
//! - [`router`]: routes and first-match routing; no match means "do not intercept" (pure).
//! - [`strategy`]: one small type per strategy over a shared `StrategyHandler` that owns
//!   fetch, cache match and cache put.
//! - [`store`]: a runtime cache as strategies use it: keys that honour `Vary`, private
//!   responses in a cache of their own, expiration after each put.
//! - [`expiration`]: per-cache limits on entries, age and bytes; oldest first; quota purges.
//! - [`cacheability`]: what may be stored (never `no-store`, errors, opaque, 206, non-GET,
//!   `Vary: *`), what is private, what `Vary` names (pure).
//! - [`precache`]: the build-time manifest of the app shell, installed and cleaned up.
//! - [`nudge`]: revalidation of one URL per nudge, coalesced while in flight.
//! - [`outbox`]: writes queued in IndexedDB when the network fails, replayed exactly once
//!   (idempotency keys), in order, under the principal that made them.
//! - [`messages`]: the page ⇄ SW message shapes.
//! - [`push`]: Web Push: refresh what a push names, then show a notification; its click.
//! - [`notify`]: how a push's notification is worded from the cached data (pure).
//! - [`respond`]: responses the SW makes itself (offline-marked copies, JSON errors).
//! - [`web`]: worker-safe bindings through the global scope, never `window()`.
//! - [`error`]: JavaScript errors wrapped once into [`error::SwError`].

pub mod cacheability;
pub mod config;
pub mod error;
pub mod expiration;
pub mod messages;
pub mod notify;
pub mod nudge;
pub mod outbox;
pub mod precache;
pub mod push;
pub mod respond;
pub mod router;
pub mod store;
pub mod strategy;
pub mod table;
pub mod web;
pub mod worker;
