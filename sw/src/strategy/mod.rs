//! Strategies: how a routed request is answered, one small type per file.
//!
//! Each one is a thin policy over [`StrategyHandler`], which owns the mechanics (fetch, cache
//! match, cache put, cacheability), the way Workbox splits `Strategy` from `StrategyHandler`.

mod cache_first;
mod cache_only;
mod handler;
mod network_first;
mod network_only;
mod stale_while_revalidate;

use std::future::Future;
use std::pin::Pin;

use web_sys::{ExtendableEvent, Request, Response};

use crate::error::Result;
use crate::store::Store;

pub use cache_first::CacheFirst;
pub use cache_only::CacheOnly;
pub use handler::{storable, StrategyHandler};
pub use network_first::NetworkFirst;
pub use network_only::NetworkOnly;
pub use stale_while_revalidate::StaleWhileRevalidate;

/// A boxed future that stays on the worker's one thread (JS values are not `Send`).
pub type LocalBoxFuture<T> = Pin<Box<dyn Future<Output = T>>>;

/// How to answer a request.
pub trait Strategy {
    /// The store this strategy reads and writes.
    fn store(&self) -> Store;

    /// The store a nudge for a URL this strategy answers refreshes: `None` for strategies
    /// that keep nothing, and for read-only ones (the precache changes only at install).
    fn nudge_store(&self) -> Option<Store> {
        None
    }

    /// Answers through the handler; an `Err` becomes a rejected promise, which the browser
    /// reports to the page as a network error.
    fn respond(&self, handler: StrategyHandler) -> LocalBoxFuture<Result<Response>>;

    /// Answers `request`; `event` (when there is one) keeps the SW alive for background work.
    fn handle(
        &self,
        request: Request,
        event: Option<ExtendableEvent>,
    ) -> LocalBoxFuture<Result<Response>> {
        self.respond(StrategyHandler::new(self.store(), request, event))
    }
}
