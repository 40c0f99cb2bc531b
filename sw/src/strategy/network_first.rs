//! Network first: always ask the network; use the stored copy only when it fails.

use js_sys::{Array, Promise};
use wasm_bindgen::JsCast;
use web_sys::Response;

use super::{LocalBoxFuture, Strategy, StrategyHandler};
use crate::error::{Result, SwError};
use crate::expiration::Expiration;
use crate::store::Store;
use crate::{respond, web};

/// Online, every read goes to the network, so `Cache-Control: no-cache` is honoured and the
/// server's 304s keep it cheap. When the network fails (or is slower than the optional
/// timeout), the stored copy is served, marked `X-Nudge-Cache: offline`.
#[derive(Debug, Clone)]
pub struct NetworkFirst {
    store: Store,
    timeout_ms: Option<i32>,
    store_responses: bool,
    fallback_url: Option<String>,
    miss_as_503: bool,
}

impl NetworkFirst {
    /// Reads and writes the named cache; a miss while offline is a network error.
    pub fn new(cache_name: &str) -> Self {
        NetworkFirst {
            store: Store::new(cache_name),
            timeout_ms: None,
            store_responses: true,
            fallback_url: None,
            miss_as_503: false,
        }
    }

    /// Applies `policy` to the caches this strategy writes.
    pub fn expiration(mut self, policy: Expiration) -> Self {
        self.store = self.store.expiration(policy);
        self
    }

    /// Serves the stored copy when the network has not answered within `ms` milliseconds
    /// (the request goes on in the background and still refreshes the cache).
    pub fn network_timeout(mut self, ms: i32) -> Self {
        self.timeout_ms = Some(ms);
        self
    }

    /// Reads the cache by URL alone but never writes it (navigations fall back on the
    /// precached shell).
    pub fn read_only(mut self) -> Self {
        self.store_responses = false;
        self.store = self.store.by_url();
        self
    }

    /// When nothing is stored for the request's URL, serves this URL's stored copy instead.
    pub fn fallback_to(mut self, url: &str) -> Self {
        self.fallback_url = Some(url.to_owned());
        self
    }

    /// Offline with nothing stored: a JSON 503 rather than a network error, for API callers
    /// that want to tell "offline" from a broken request.
    pub fn miss_as_503(mut self) -> Self {
        self.miss_as_503 = true;
        self
    }

    async fn ask_network(&self, handler: &StrategyHandler) -> Result<Response> {
        match (self.timeout_ms, self.store_responses) {
            (None, true) => handler.fetch_and_cache_put().await,
            (None, false) => handler.fetch().await,
            (Some(ms), _) => self.race_timeout(handler, ms).await,
        }
    }

    /// The network against a timer. If the timer wins and a copy is stored, the copy is the
    /// answer; otherwise the network is awaited after all.
    async fn race_timeout(&self, handler: &StrategyHandler, ms: i32) -> Result<Response> {
        let network = if self.store_responses {
            handler.spawn_fetch_and_cache_put()
        } else {
            web::fetch_promise(handler.request())
        };
        let winner = web::wait(Promise::race(&Array::of2(&network, &web::delay(ms)))).await?;
        if let Ok(response) = winner.dyn_into::<Response>() {
            return Ok(response);
        }
        if let Some(stored) = self.stored(handler).await? {
            return respond::mark_offline(&stored);
        }
        Ok(web::wait(network).await?.unchecked_into())
    }

    async fn stored(&self, handler: &StrategyHandler) -> Result<Option<Response>> {
        if let Some(stored) = handler.cache_match().await? {
            return Ok(Some(stored));
        }
        match &self.fallback_url {
            Some(url) => handler.cache_match_url(&web::resolve(url)).await,
            None => Ok(None),
        }
    }
}

impl Strategy for NetworkFirst {
    fn store(&self) -> Store {
        self.store.clone()
    }

    fn nudge_store(&self) -> Option<Store> {
        self.store_responses.then(|| self.store.clone())
    }

    fn respond(&self, handler: StrategyHandler) -> LocalBoxFuture<Result<Response>> {
        let this = self.clone();
        Box::pin(async move {
            let network_error: SwError = match this.ask_network(&handler).await {
                Ok(response) => return Ok(response),
                Err(error) => error,
            };
            if let Some(stored) = this.stored(&handler).await? {
                return respond::mark_offline(&stored);
            }
            if this.miss_as_503 {
                return respond::json_error(503, "offline", "offline and no stored copy");
            }
            Err(network_error)
        })
    }
}
