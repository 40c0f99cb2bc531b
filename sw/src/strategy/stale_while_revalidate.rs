//! Stale while revalidate: the stored copy now, a fresh one for next time.

use web_sys::Response;

use super::{LocalBoxFuture, Strategy, StrategyHandler};
use crate::error::Result;
use crate::expiration::Expiration;
use crate::store::Store;

/// Answers from the cache at once and refreshes it in the background (kept alive with
/// `waitUntil`); a miss waits for the network.
#[derive(Debug, Clone)]
pub struct StaleWhileRevalidate {
    store: Store,
}

impl StaleWhileRevalidate {
    /// Reads and writes the named cache.
    pub fn new(cache_name: &str) -> Self {
        StaleWhileRevalidate {
            store: Store::new(cache_name),
        }
    }

    /// Applies `policy` to the caches this strategy writes.
    pub fn expiration(mut self, policy: Expiration) -> Self {
        self.store = self.store.expiration(policy);
        self
    }
}

impl Strategy for StaleWhileRevalidate {
    fn store(&self) -> Store {
        self.store.clone()
    }

    fn nudge_store(&self) -> Option<Store> {
        Some(self.store.clone())
    }

    fn respond(&self, handler: StrategyHandler) -> LocalBoxFuture<Result<Response>> {
        Box::pin(async move {
            match handler.cache_match().await? {
                Some(stored) => {
                    // Runs on its own under waitUntil; the stored copy answers now.
                    let _refresh = handler.spawn_fetch_and_cache_put();
                    Ok(stored)
                }
                None => handler.fetch_and_cache_put().await,
            }
        })
    }
}
