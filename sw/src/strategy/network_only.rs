//! Network only: for data that must never come from the cache.

use web_sys::Response;

use super::{LocalBoxFuture, Strategy, StrategyHandler};
use crate::error::Result;
use crate::store::Store;

/// Always the network, never stored: ephemeral reads such as presence.
#[derive(Debug, Clone, Default)]
pub struct NetworkOnly;

impl Strategy for NetworkOnly {
    fn store(&self) -> Store {
        Store::new("")
    }

    fn respond(&self, handler: StrategyHandler) -> LocalBoxFuture<Result<Response>> {
        Box::pin(async move { handler.fetch().await })
    }
}
