//! Stale while revalidate: the stored copy now, a fresh one for next time.

use web_sys::Response;

use super::{LocalBoxFuture, Strategy, StrategyHandler};
use crate::error::Result;

/// Answers from the cache at once and refreshes it in the background (kept alive with
/// `waitUntil`); a miss waits for the network.
#[derive(Debug, Clone)]
pub struct StaleWhileRevalidate {
    cache_name: String,
}

impl StaleWhileRevalidate {
    /// Reads and writes the named cache.
    pub fn new(cache_name: &str) -> Self {
        StaleWhileRevalidate {
            cache_name: cache_name.to_owned(),
        }
    }
}

impl Strategy for StaleWhileRevalidate {
    fn cache_name(&self) -> &str {
        &self.cache_name
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
