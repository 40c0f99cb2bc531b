//! A runtime cache as the strategies and nudges use it: entries keyed for `Vary`, private
//! responses kept apart, expiration after every put.
//!
//! - **Vary.** Each entry is stored under a request that carries the values of the headers its
//!   response's `Vary` names (and only those: nothing else of the page's request, such as
//!   credentials, needs to sit on disk), so the Cache API's own matching serves it only to a
//!   request with the same values. Headers the browser adds below the SW (`Accept-Encoding`)
//!   are invisible on both sides, which is why nudge's `Vary: Accept-Encoding` matches by URL.
//! - **Private.** A `Cache-Control: private` response goes to [`PRIVATE_CACHE`], which
//!   sign-out empties; the same variant is removed from the other cache, so a resource that
//!   turned private (or public) is never served from the wrong one. A private response whose
//!   request went out before a sign-out began is not stored at all ([`Epoch`]): it was fetched
//!   with the old session, and storing it after the cache was deleted would bring it back.
//! - **URL-keyed** stores (the precache) look entries up by URL alone: one version of the
//!   shell, whatever the request's headers.

use std::cell::Cell;

use web_sys::{Headers, Request, RequestInit, Response};

use crate::cacheability::{is_private, vary_fields};
use crate::error::Result;
use crate::expiration::{self, Expiration, SIZE, STORED_AT};
use crate::web;

/// The cache of `Cache-Control: private` responses, emptied by a `sign-out` message.
pub const PRIVATE_CACHE: &str = "nudge-private-v1";

thread_local! {
    static SIGN_OUTS: Cell<u64> = const { Cell::new(0) };
}

/// How many sign-outs this SW has begun, read when a request goes out. A response may go into
/// the private cache only while the epoch is still the one its request started in: a fetch in
/// flight while the user signs out (a nudge's revalidation, a page's read) still carries the old
/// session, and its private answer must not land in the cache the sign-out just deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Epoch(u64);

impl Epoch {
    /// The epoch now: take it before sending the request whose answer may be stored.
    pub fn now() -> Epoch {
        Epoch(SIGN_OUTS.with(Cell::get))
    }
}

/// Starts a new epoch: call it synchronously when a sign-out arrives, before the private cache
/// is deleted, so that every private put still to come from an older request is refused.
pub fn begin_sign_out() {
    SIGN_OUTS.with(|count| count.set(count.get() + 1));
}

/// A named cache with its expiration policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Store {
    name: String,
    expiration: Expiration,
    by_url: bool,
}

impl Store {
    /// The cache named `name`, without limits, honouring `Vary`, with private responses apart.
    pub fn new(name: &str) -> Self {
        Store {
            name: name.to_owned(),
            expiration: Expiration::NONE,
            by_url: false,
        }
    }

    /// The same cache under `policy`.
    pub fn expiration(mut self, policy: Expiration) -> Self {
        self.expiration = policy;
        self
    }

    /// The same cache read by URL alone and without the private cache (the precache).
    pub fn by_url(mut self) -> Self {
        self.by_url = true;
        self
    }

    /// The cache's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The caches a lookup reads, in order.
    fn names(&self) -> Vec<&str> {
        if self.by_url {
            vec![&self.name]
        } else {
            vec![&self.name, PRIVATE_CACHE]
        }
    }

    /// The stored response for `request`: from this cache, else from the private one.
    pub async fn lookup(&self, request: &Request) -> Result<Option<Response>> {
        for name in self.names() {
            let found = web::storage_match(name, request, self.by_url).await?;
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    /// Every stored variant of `url` in both caches, as the key it was stored under (the
    /// request headers its `Vary` names) and its `ETag`: what a nudge revalidates.
    pub async fn variants(&self, url: &str) -> Result<Vec<(Request, Option<String>)>> {
        let mut found = Vec::new();
        for name in self.names() {
            let cache = web::open_cache(name).await?;
            for key in web::cache_keys_for(&cache, url).await? {
                let etag = match web::cache_match_request(&cache, &key).await? {
                    Some(stored) => stored.headers().get("ETag")?,
                    None => None,
                };
                found.push((key, etag));
            }
        }
        Ok(found)
    }

    /// Stores `response` (already judged storable) as the answer to `request`, which went out
    /// in epoch `sent`; `Ok(false)` when the quota refused it even after a purge, or when it is
    /// private and a sign-out has begun since.
    pub async fn put(&self, request: &Request, response: &Response, sent: Epoch) -> Result<bool> {
        let headers = response.headers();
        let private = !self.by_url
            && headers
                .get("Cache-Control")?
                .is_some_and(|cc| is_private(&cc));
        let (target, other) = match private {
            true => (PRIVATE_CACHE, self.name.as_str()),
            false => (self.name.as_str(), PRIVATE_CACHE),
        };
        let size = web::body_len(response).await? as u64;
        let key = key_for(request, headers.get("Vary")?.as_deref(), size)?;
        // Checked after the last await before the cache is opened: a sign-out that begins from
        // here on deletes the cache after this open, and the put lands in the deleted cache,
        // which nothing can read any more.
        if private && sent != Epoch::now() {
            web::debug(&format!(
                "not stored: a sign-out began while it was fetched: {}",
                request.url()
            ));
            return Ok(false);
        }
        let cache = web::open_cache(target).await?;
        let stored = expiration::put(&cache, &key, response, &self.expiration).await?;
        if !self.by_url {
            web::cache_delete(&web::open_cache(other).await?, &key).await?;
        }
        Ok(stored)
    }
}

/// The key for storing the answer to `request`: its URL, the values of the headers `vary`
/// names, and expiration's bookkeeping.
pub fn key_for(request: &Request, vary: Option<&str>, size: u64) -> Result<Request> {
    let headers = Headers::new()?;
    let sent = request.headers();
    for field in vary.map(vary_fields).unwrap_or_default() {
        if let Some(value) = sent.get(&field)? {
            headers.set(&field, &value)?;
        }
    }
    headers.set(STORED_AT, &(web::now_ms() as u64).to_string())?;
    headers.set(SIZE, &size.to_string())?;
    let init = RequestInit::new();
    init.set_headers(&headers);
    Ok(Request::new_with_str_and_init(&request.url(), &init)?)
}

/// The request headers of a stored key without expiration's bookkeeping: what a refresh of
/// that variant sends.
pub fn request_headers(key: &Request) -> Result<Headers> {
    let headers = Headers::new_with_headers(&key.headers())?;
    headers.delete(STORED_AT)?;
    headers.delete(SIZE)?;
    Ok(headers)
}
