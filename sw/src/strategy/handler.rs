//! The mechanics that every strategy shares: fetch, cache match, cache put.

use js_sys::Promise;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{ExtendableEvent, Request, RequestMode, Response, ResponseType};

use crate::cacheability::{self, Exchange, Kind, Refusal};
use crate::error::{Result, SwError};
use crate::store::{Epoch, Store};
use crate::web;

/// One request being answered: the request, the store it may use, and the event that can
/// extend the SW's lifetime. Cheap to clone (JS handles), so background work can own a copy.
#[derive(Clone)]
pub struct StrategyHandler {
    store: Store,
    request: Request,
    event: Option<ExtendableEvent>,
}

impl StrategyHandler {
    /// A handler for `request`, using `store`.
    pub fn new(store: Store, request: Request, event: Option<ExtendableEvent>) -> Self {
        StrategyHandler {
            store,
            request,
            event,
        }
    }

    /// The request's URL.
    pub fn url(&self) -> String {
        self.request.url()
    }

    /// The request as it came.
    pub fn request(&self) -> &Request {
        &self.request
    }

    /// Fetches the request from the network (no cache involved). A navigation takes the
    /// browser's navigation preload when there is one: that request started while the SW was
    /// still starting.
    pub async fn fetch(&self) -> Result<Response> {
        if let Some(preload) = self.preload() {
            if let Ok(response) = web::wait(preload).await?.dyn_into::<Response>() {
                return Ok(response);
            }
        }
        web::fetch(&self.request).await
    }

    /// The event's `preloadResponse`, for a navigation (it resolves to `undefined` when
    /// preload is off).
    fn preload(&self) -> Option<Promise> {
        if self.request.mode() != RequestMode::Navigate {
            return None;
        }
        let event = self.event.as_ref()?;
        let preload = js_sys::Reflect::get(event, &"preloadResponse".into()).ok()?;
        preload.dyn_into::<Promise>().ok()
    }

    /// The stored response for this request (honouring `Vary`, unless the store is URL-keyed).
    pub async fn cache_match(&self) -> Result<Option<Response>> {
        self.store.lookup(&self.request).await
    }

    /// The stored response for another URL in the handler's cache (a fallback page), by URL.
    pub async fn cache_match_url(&self, url: &str) -> Result<Option<Response>> {
        let cache = web::open_cache(self.store.name()).await?;
        web::cache_match(&cache, url).await
    }

    /// Stores a copy of `response`, fetched in epoch `sent`, when cacheability allows it (and
    /// the quota, after a purge, and for a private one no sign-out since); `Ok(false)` when it
    /// is not stored.
    pub async fn cache_put(&self, response: &Response, sent: Epoch) -> Result<bool> {
        if let Err(refusal) = storable(&self.request.method(), response) {
            web::debug(&format!("not stored ({refusal:?}): {}", self.url()));
            return Ok(false);
        }
        self.store
            .put(&self.request, &response.clone()?, sent)
            .await
    }

    /// Fetches, then stores a copy before handing the response back. Awaiting the put (rather
    /// than leaving it in the background) means that once a page has its response, a
    /// re-render from the cache sees the same data; API bodies are small, so this costs little.
    /// A failed put (quota) is logged, not fatal: the page still gets its data.
    pub async fn fetch_and_cache_put(&self) -> Result<Response> {
        let sent = Epoch::now();
        let response = self.fetch().await?;
        if let Err(error) = self.cache_put(&response, sent).await {
            web::warn(&format!("cache put failed for {}: {error}", self.url()));
        }
        Ok(response)
    }

    /// [`fetch_and_cache_put`](Self::fetch_and_cache_put) as a promise that runs on its own,
    /// kept alive with `waitUntil`: for work that must finish after the answer has gone.
    pub fn spawn_fetch_and_cache_put(&self) -> Promise {
        let handler = self.clone();
        let promise = web::promise(async move {
            let response = handler.fetch_and_cache_put().await?;
            Ok(JsValue::from(response))
        });
        self.wait_until(&promise);
        promise
    }

    /// Extends the SW's lifetime until `promise` settles, when there is an event to extend.
    pub fn wait_until(&self, promise: &Promise) {
        if let Some(event) = &self.event {
            // A rejection here only means that background work failed (offline, most often);
            // it must not count as a failure of the whole event, so it is swallowed first.
            let settled = JsFuture::from(promise.clone());
            let quiet = web::promise(async move {
                let _ = settled.await;
                Ok(JsValue::UNDEFINED)
            });
            if let Err(error) = event.wait_until(&quiet) {
                web::warn(&format!("waitUntil refused: {}", SwError::from(error)));
            }
        }
    }
}

/// The cacheability verdict for a real response.
pub fn storable(method: &str, response: &Response) -> std::result::Result<(), Refusal> {
    let kind = match response.type_() {
        ResponseType::Basic | ResponseType::Cors | ResponseType::Default => Kind::Transparent,
        ResponseType::Error => Kind::Error,
        _ => Kind::Opaque,
    };
    let headers = response.headers();
    let cache_control = headers.get("Cache-Control").ok().flatten();
    let vary = headers.get("Vary").ok().flatten();
    cacheability::check(&Exchange {
        method,
        status: response.status(),
        kind,
        cache_control: cache_control.as_deref(),
        vary: vary.as_deref(),
    })
}
