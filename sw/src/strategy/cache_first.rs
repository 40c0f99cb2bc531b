//! Cache first: the stored copy when there is one, the network otherwise.

use web_sys::Response;

use super::{LocalBoxFuture, Strategy, StrategyHandler};
use crate::error::Result;
use crate::expiration::Expiration;
use crate::store::Store;

/// Serves a stored copy without revalidating it: right for files whose URL and revision are
/// fixed for the life of a SW version (the precached shell).
#[derive(Debug, Clone)]
pub struct CacheFirst {
    store: Store,
    store_responses: bool,
}

impl CacheFirst {
    /// Reads from the named cache and stores what a miss brings from the network.
    pub fn new(cache_name: &str) -> Self {
        CacheFirst {
            store: Store::new(cache_name),
            store_responses: true,
        }
    }

    /// Applies `policy` to the caches this strategy writes.
    pub fn expiration(mut self, policy: Expiration) -> Self {
        self.store = self.store.expiration(policy);
        self
    }

    /// Never writes: the precache is filled at install only, so that one cache always holds
    /// one consistent version of the shell, looked up by URL alone.
    pub fn read_only(mut self) -> Self {
        self.store_responses = false;
        self.store = self.store.by_url();
        self
    }
}

impl Strategy for CacheFirst {
    fn store(&self) -> Store {
        self.store.clone()
    }

    fn nudge_store(&self) -> Option<Store> {
        self.store_responses.then(|| self.store.clone())
    }

    fn respond(&self, handler: StrategyHandler) -> LocalBoxFuture<Result<Response>> {
        let store = self.store_responses;
        Box::pin(async move {
            if let Some(stored) = handler.cache_match().await? {
                return Ok(stored);
            }
            if store {
                handler.fetch_and_cache_put().await
            } else {
                handler.fetch().await
            }
        })
    }
}
