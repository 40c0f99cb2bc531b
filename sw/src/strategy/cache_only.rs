//! Cache only: answer from the stored copy without touching the network.

use web_sys::Response;

use super::{LocalBoxFuture, Strategy, StrategyHandler};
use crate::error::Result;
use crate::respond;
use crate::store::Store;

/// The stored copy, or a 504 like an HTTP cache answering `only-if-cached` with nothing stored.
/// The page uses it to re-render after an `updated` message without a request of its own.
#[derive(Debug, Clone)]
pub struct CacheOnly {
    store: Store,
}

impl CacheOnly {
    /// Reads from the named cache.
    pub fn new(cache_name: &str) -> Self {
        CacheOnly {
            store: Store::new(cache_name),
        }
    }
}

impl Strategy for CacheOnly {
    fn store(&self) -> Store {
        self.store.clone()
    }

    fn nudge_store(&self) -> Option<Store> {
        Some(self.store.clone())
    }

    fn respond(&self, handler: StrategyHandler) -> LocalBoxFuture<Result<Response>> {
        Box::pin(async move {
            match handler.cache_match().await? {
                Some(stored) => Ok(stored),
                None => respond::json_error(504, "not_cached", "no stored copy of this resource"),
            }
        })
    }
}
