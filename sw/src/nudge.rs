//! Revalidation from nudges: one conditional GET per changed URL, coalesced.
//!
//! A nudge names a URL and the ETag its new version carries. If the stored copy already has
//! that ETag there is nothing to do; otherwise one GET with `If-None-Match` refreshes the
//! cache (a 304 leaves it as it is). Nudges for a URL that arrive while its revalidation is in
//! flight are folded into at most one more pass, run after the current one, so a burst of
//! nudges costs two requests at most.

use std::cell::RefCell;
use std::collections::HashMap;

use js_sys::Promise;
use wasm_bindgen::JsValue;
use web_sys::{Headers, Request, RequestCache, RequestInit};

use crate::error::{Result, SwError};
use crate::store::{self, Epoch, Store};
use crate::strategy::storable;
use crate::web;

/// Called once per pass that changed the cache, with the URL as the nudge gave it; the flight
/// waits for the returned promise (the broadcast to the tabs) before it settles.
pub type OnUpdate = fn(&str) -> Promise;

struct Flight {
    promise: Promise,
    /// The ETag of the newest nudge that arrived during the flight, if one did.
    again: Option<Option<String>>,
}

thread_local! {
    static IN_FLIGHT: RefCell<HashMap<String, Flight>> = RefCell::new(HashMap::new());
}

/// Revalidates `url` in `store` (and its private cache). The promise resolves to `true` when the
/// cache changed; a nudge that joins a flight gets that flight's promise, so `waitUntil` on it
/// covers the extra pass too.
pub fn nudge(store: &Store, url: &str, etag: Option<String>, on_update: OnUpdate) -> Promise {
    let key = web::resolve(url);
    let joined = IN_FLIGHT.with(|flights| {
        let mut flights = flights.borrow_mut();
        let flight = flights.get_mut(&key)?;
        flight.again = Some(etag.clone());
        Some(flight.promise.clone())
    });
    if let Some(promise) = joined {
        return promise;
    }
    let (store, url) = (store.clone(), url.to_owned());
    let flight = fly(store, url, key.clone(), etag, on_update);
    let promise = web::promise(async move { flight.await.map_err(SwError::from) });
    IN_FLIGHT.with(|flights| {
        let flight = Flight {
            promise: promise.clone(),
            again: None,
        };
        flights.borrow_mut().insert(key, flight);
    });
    promise
}

async fn fly(
    store: Store,
    url: String,
    key: String,
    mut etag: Option<String>,
    on_update: OnUpdate,
) -> Result<JsValue, JsValue> {
    let mut updated = false;
    loop {
        let result = revalidate(&store, &key, etag.as_deref()).await;
        // Deciding whether to go again and leaving the table happen in one synchronous step,
        // so a nudge is either folded into this flight or starts a new one, never lost.
        let again = IN_FLIGHT.with(|flights| {
            let mut flights = flights.borrow_mut();
            let again = flights.get_mut(&key).and_then(|flight| flight.again.take());
            if again.is_none() || result.is_err() {
                flights.remove(&key);
            }
            again
        });
        if result? {
            updated = true;
            if let Err(error) = web::wait(on_update(&url)).await {
                web::warn(&format!("telling the tabs about {url} failed: {error}"));
            }
        }
        match again {
            Some(next) => etag = next,
            None => return Ok(JsValue::from_bool(updated)),
        }
    }
}

/// One pass: `Ok(true)` when a new version was stored. Each stored variant of the URL (one
/// per set of values of the headers its `Vary` names; nudge's API has one) is refreshed with
/// the request headers it was stored for, so the refreshed copy replaces it and serves the
/// same requests. With nothing stored, one plain GET fills the cache.
pub async fn revalidate(store: &Store, url: &str, etag: Option<&str>) -> Result<bool> {
    let variants = store.variants(url).await?;
    if variants.is_empty() {
        return refresh(store, url, Headers::new()?, None).await;
    }
    let mut updated = false;
    for (key, stored_etag) in variants {
        if etag.is_some() && stored_etag.as_deref() == etag {
            continue;
        }
        let headers = store::request_headers(&key)?;
        updated |= refresh(store, url, headers, stored_etag.as_deref()).await?;
    }
    Ok(updated)
}

/// One conditional GET of `url` with `headers`; stores a changed answer.
async fn refresh(store: &Store, url: &str, headers: Headers, etag: Option<&str>) -> Result<bool> {
    if let Some(etag) = etag {
        headers.set("If-None-Match", etag)?;
    }
    let init = RequestInit::new();
    // Straight to the server: the browser's HTTP cache must neither answer for it nor turn
    // our 304 into a 200 of its own.
    init.set_cache(RequestCache::NoStore);
    init.set_headers(&headers);
    let request = Request::new_with_str_and_init(url, &init)?;
    let sent = Epoch::now();
    let response = web::fetch(&request).await?;
    if response.status() == 304 || storable("GET", &response).is_err() {
        return Ok(false);
    }
    store.put(&request, &response, sent).await
}
