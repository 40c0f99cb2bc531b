//! Worker-safe access to the Web APIs the SW needs.
//!
//! Everything goes through the global scope (`self`), never `window()`, which does not exist
//! in a worker. Each helper awaits its promise and wraps a rejection once into [`SwError`].

use js_sys::Promise;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    Cache, CacheQueryOptions, CacheStorage, Request, Response, ServiceWorkerGlobalScope,
    WorkerGlobalScope,
};

use crate::error::{Result, SwError};

/// The worker's global scope; the tests run in a ServiceWorker too, so this always holds.
pub fn scope() -> WorkerGlobalScope {
    js_sys::global().unchecked_into()
}

/// The ServiceWorker-only part of the global scope (clients, skipWaiting).
pub fn sw_scope() -> Result<ServiceWorkerGlobalScope> {
    js_sys::global()
        .dyn_into()
        .map_err(|_| SwError::new("not running in a ServiceWorker"))
}

/// The SW's own origin, such as `https://example.org`.
pub fn origin() -> String {
    scope().location().origin()
}

/// Resolves a path against the SW's origin, since cache keys are absolute URLs.
pub fn resolve(url: &str) -> String {
    match web_sys::Url::new_with_base(url, &origin()) {
        Ok(absolute) => absolute.href(),
        Err(_) => url.to_owned(),
    }
}

/// A future of the SW's work as a promise (for `respondWith`, `waitUntil`, or to run on its
/// own). Boxed first, so that the executor's code exists once in the module rather than once
/// per future type: it is much of the SW's size otherwise.
pub fn promise<F>(work: F) -> Promise
where
    F: std::future::Future<Output = Result<JsValue>> + 'static,
{
    boxed_promise(Box::pin(work))
}

#[inline(never)]
fn boxed_promise(
    work: std::pin::Pin<Box<dyn std::future::Future<Output = Result<JsValue>>>>,
) -> Promise {
    wasm_bindgen_futures::future_to_promise(async move { work.await.map_err(JsValue::from) })
}

/// Awaits a promise, turning a rejection into an [`SwError`].
pub async fn wait(promise: Promise) -> Result<JsValue> {
    Ok(JsFuture::from(promise).await?)
}

/// The raw `fetch(request)` promise, for racing it against a timer.
pub fn fetch_promise(request: &Request) -> Promise {
    scope().fetch_with_request(request)
}

/// A promise that resolves to `undefined` after `ms` milliseconds.
pub fn delay(ms: i32) -> Promise {
    Promise::new(&mut |resolve, _reject| {
        // A timer that cannot be set leaves the race to the network alone, which is harmless.
        let _ = scope().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
    })
}

/// `fetch(request)`; rejects (an `Err`) when the network fails, not on HTTP errors.
pub async fn fetch(request: &Request) -> Result<Response> {
    Ok(wait(scope().fetch_with_request(request))
        .await?
        .unchecked_into())
}

fn caches() -> Result<CacheStorage> {
    Ok(scope().caches()?)
}

/// Opens (creating if needed) the named cache.
pub async fn open_cache(name: &str) -> Result<Cache> {
    Ok(wait(caches()?.open(name)).await?.unchecked_into())
}

/// The names of every cache of this origin.
pub async fn cache_names() -> Result<Vec<String>> {
    let names: js_sys::Array = wait(caches()?.keys()).await?.unchecked_into();
    Ok(names.iter().filter_map(|name| name.as_string()).collect())
}

/// Deletes the named cache; `Ok(false)` when there was none.
pub async fn delete_cache(name: &str) -> Result<bool> {
    Ok(wait(caches()?.delete(name))
        .await?
        .as_bool()
        .unwrap_or(false))
}

/// Match options: `ignoreVary` when the caller looks an entry up by URL alone.
fn query_options(ignore_vary: bool) -> CacheQueryOptions {
    let options = CacheQueryOptions::new();
    options.set_ignore_vary(ignore_vary);
    options
}

/// The stored response for `request` in the named cache, through `caches.match` with a
/// `cacheName`: one round trip to the browser's cache storage where `open` then `match` take
/// two, which is most of the cost of a cache hit. A cache that does not exist is a miss (and,
/// unlike `open`, is not created). `ignore_vary` as in [`cache_match`].
pub async fn storage_match(
    cache_name: &str,
    request: &Request,
    ignore_vary: bool,
) -> Result<Option<Response>> {
    let options = query_options(ignore_vary);
    // `MultiCacheQueryOptions.cacheName`: web-sys only knows the `CacheQueryOptions` part.
    js_sys::Reflect::set(&options, &"cacheName".into(), &cache_name.into())?;
    let found = wait(caches()?.match_with_request_and_options(request, &options)).await?;
    Ok(found.dyn_into().ok())
}

/// The stored response for a URL in a cache, whatever the request headers it was stored for
/// (`ignoreVary`): for the precache and nudges, which name URLs, not requests.
pub async fn cache_match(cache: &Cache, url: &str) -> Result<Option<Response>> {
    let found = wait(cache.match_with_str_and_options(url, &query_options(true))).await?;
    Ok(found.dyn_into().ok())
}

/// The stored response for `request`, honouring the `Vary` it was stored with: an entry is
/// served only to a request whose headers named by that `Vary` have the same values.
pub async fn cache_match_request(cache: &Cache, request: &Request) -> Result<Option<Response>> {
    let found = wait(cache.match_with_request_and_options(request, &query_options(false))).await?;
    Ok(found.dyn_into().ok())
}

/// Every key (request) in the cache, in insertion order, headers included.
pub async fn cache_keys(cache: &Cache) -> Result<Vec<Request>> {
    let keys: js_sys::Array = wait(cache.keys()).await?.unchecked_into();
    Ok(keys.iter().map(JsCast::unchecked_into).collect())
}

/// The keys stored for a URL, every variant (`ignoreVary`).
pub async fn cache_keys_for(cache: &Cache, url: &str) -> Result<Vec<Request>> {
    let keys = cache.keys_with_str_and_options(url, &query_options(true));
    let keys: js_sys::Array = wait(keys).await?.unchecked_into();
    Ok(keys.iter().map(JsCast::unchecked_into).collect())
}

/// Deletes the entries that `request` matches, honouring `Vary` (one variant, not all).
pub async fn cache_delete(cache: &Cache, request: &Request) -> Result<bool> {
    let deleted = cache.delete_with_request_and_options(request, &query_options(false));
    Ok(wait(deleted).await?.as_bool().unwrap_or(false))
}

/// Stores a response under a URL, for entries whose key needs no headers (the precache).
pub async fn cache_put(cache: &Cache, url: &str, response: &Response) -> Result<()> {
    wait(cache.put_with_str(url, response)).await?;
    Ok(())
}

/// Stores a response under a request, whose headers the Cache API keeps for `Vary`.
pub async fn cache_put_request(cache: &Cache, key: &Request, response: &Response) -> Result<()> {
    wait(cache.put_with_request(key, response)).await?;
    Ok(())
}

/// The length in bytes of a response's body, read from a clone (the response stays unread).
pub async fn body_len(response: &Response) -> Result<f64> {
    let buffer = wait(response.clone()?.array_buffer()?).await?;
    Ok(buffer
        .unchecked_into::<js_sys::ArrayBuffer>()
        .byte_length()
        .into())
}

/// Milliseconds since the epoch, from the worker's clock.
pub fn now_ms() -> f64 {
    js_sys::Date::now()
}

/// A debug line in the worker's console (visible in DevTools and in the test runner's log).
pub fn debug(message: &str) {
    web_sys::console::debug_1(&JsValue::from_str(&format!("nudge-sw: {message}")));
}

/// A warning in the worker's console, for failures that do not stop the SW.
pub fn warn(message: &str) {
    web_sys::console::warn_1(&JsValue::from_str(&format!("nudge-sw: {message}")));
}

/// An error in the worker's console, for a mistake that someone must fix (a bad route table).
pub fn error(message: &str) {
    web_sys::console::error_1(&JsValue::from_str(&format!("nudge-sw: {message}")));
}
