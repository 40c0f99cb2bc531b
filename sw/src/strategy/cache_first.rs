//! Cache first: the stored copy when there is one, the network otherwise.

use web_sys::Response;

use super::{LocalBoxFuture, Strategy, StrategyHandler};
use crate::error::Result;

/// Serves a stored copy without revalidating it: right for files whose URL and revision are
/// fixed for the life of a SW version (the precached shell).
#[derive(Debug, Clone)]
pub struct CacheFirst {
    cache_name: String,
    store: bool,
}

impl CacheFirst {
    /// Reads from the named cache and stores what a miss brings from the network.
    pub fn new(cache_name: &str) -> Self {
        CacheFirst {
            cache_name: cache_name.to_owned(),
            store: true,
        }
    }

    /// Never writes: the precache is filled at install only, so that one cache always holds
    /// one consistent version of the shell.
    pub fn read_only(mut self) -> Self {
        self.store = false;
        self
    }
}

impl Strategy for CacheFirst {
    fn cache_name(&self) -> &str {
        &self.cache_name
    }

    fn respond(&self, handler: StrategyHandler) -> LocalBoxFuture<Result<Response>> {
        let store = self.store;
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
