//! The outbox: writes that survive the network, sent exactly once, in order, with no tab open.
//!
//! A route with the `outbox` strategy takes writes (POST, PUT, PATCH, DELETE). Every one carries
//! an `Idempotency-Key` from its first try (the page's, or one added here), so a replay after a
//! lost answer takes effect once at the server. Online, the write goes straight up and the page
//! gets the server's answer. When the network fails or the server answers 503, the request
//! (method, URL, the page's headers, body, key) is stored in IndexedDB ([`db`]) in arrival order
//! and the page gets a 202 at once, naming the entry in [`ENTRY_HEADER`]. A write that arrives
//! while earlier ones of the same principal wait is queued behind them, so the order holds.
//!
//! Replay ([`replay`]) sends the waiting entries one at a time, oldest first, each with its own
//! key: on Background Sync's `sync` event, on the SW's start, and when a page says the network
//! is back (`{type: "outbox", op: "flush"}`). A 2xx ends an entry; 408, 429, 5xx or no network
//! keep it and stop the pass (backoff: a timer while the SW lives, and the browser's own retry
//! of a failed `sync`); any other status removes it and tells every page why; an entry older
//! than its route's `maxAgeSeconds` is dropped and reported. One pass runs at a time, and a
//! call during a pass folds into one more pass, so the SW never sends an entry twice at once.
//!
//! Accounts: every entry carries the principal that was current when it was queued, and goes up
//! only while that principal is current again. The page names its principal (`Nudge-Principal`
//! request header, taken off before the request goes up, or the `principal` of an outbox
//! message); a `sign-out` message makes it "nobody yet" until a page names one, so after a
//! sign-out nothing waits-then-goes under whoever signs in next. The current principal is kept
//! in IndexedDB too, since a `sync` may start the SW with no page open.
//!
//! Pages hear `{type: "outbox", event, entry, status, response}` for `queued`, `sent` and
//! `failed` (`reason`: `refused` or `expired`), and can ask for the waiting entries
//! (`{type: "outbox", op: "list"}`, answered `{type: "outbox-entries", entries}`).

pub mod db;

use std::cell::{Cell, RefCell};

use js_sys::{Array, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{Headers, Request, RequestCache, RequestInit, Response, ResponseInit};

use crate::error::{Result, SwError};
use crate::store::Store;
use crate::strategy::{LocalBoxFuture, Strategy, StrategyHandler};
use crate::web::{self, promise};

/// The header of a 202 that names the queued entry (its `id`).
pub const ENTRY_HEADER: &str = "Nudge-Outbox-Entry";
/// The request header through which a page names its principal (URI-encoded JSON: a string,
/// or `null` for nobody in particular); never sent to the server.
pub const PRINCIPAL_HEADER: &str = "Nudge-Principal";
/// The header that makes a write idempotent at the server.
pub const KEY_HEADER: &str = "Idempotency-Key";
/// The Background Sync tag registered when an entry is queued.
pub const SYNC_TAG: &str = "nudge-outbox";

/// What a replay does with an entry after the server's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Taken: remove it.
    Done,
    /// Try again later (408, 429, 5xx): keep it, in its place.
    Keep,
    /// Refused for good: remove it and tell the pages.
    Refused,
}

/// The verdict for an answer with `status`.
pub fn verdict(status: u16) -> Verdict {
    match status {
        200..=299 => Verdict::Done,
        408 | 429 | 500..=599 => Verdict::Keep,
        _ => Verdict::Refused,
    }
}

/// The wait before the next try after `failures` failed passes in a row: 2 s doubling, at
/// most 5 minutes.
pub fn backoff_ms(failures: u32) -> i32 {
    2000_i32.saturating_mul(1 << failures.min(8)).min(300_000)
}

/// Whether an entry queued at `queued_at` with a maximum age is too old at `now` (ms).
pub fn expired(queued_at: f64, max_age_ms: Option<f64>, now: f64) -> bool {
    max_age_ms.is_some_and(|max| now - queued_at > max)
}

/// Who writes now, as far as the pages told the SW.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// This principal (`None`: nobody in particular, an app without accounts).
    Is(Option<String>),
    /// Signed out and nobody named since: nothing goes up.
    SignedOut,
}

impl Principal {
    /// Whether an entry made by `owner` may go up now.
    pub fn may_send(&self, owner: &Option<String>) -> bool {
        matches!(self, Principal::Is(current) if current == owner)
    }

    /// The owner of an entry queued now.
    fn owner(&self) -> Option<String> {
        match self {
            Principal::Is(current) => current.clone(),
            Principal::SignedOut => None,
        }
    }

    /// As stored in the meta store: the name, `null`, or `false` for signed out.
    fn to_js(&self) -> JsValue {
        match self {
            Principal::Is(Some(name)) => name.into(),
            Principal::Is(None) => JsValue::NULL,
            Principal::SignedOut => JsValue::FALSE,
        }
    }

    /// From the meta store or a message; `undefined` (never told) means nobody in particular.
    pub fn from_js(value: &JsValue) -> Principal {
        match value.as_string() {
            Some(name) => Principal::Is(Some(name)),
            None if value.as_bool() == Some(false) => Principal::SignedOut,
            None => Principal::Is(None),
        }
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Principal>> = const { RefCell::new(None) };
    static HELD: Cell<bool> = const { Cell::new(false) };
    static PASS: RefCell<Option<Promise>> = const { RefCell::new(None) };
    static AGAIN: Cell<bool> = const { Cell::new(false) };
    static FAILURES: Cell<u32> = const { Cell::new(0) };
    static TIMER: Cell<bool> = const { Cell::new(false) };
}

/// The current principal (read from IndexedDB once per start).
pub async fn current() -> Result<Principal> {
    if let Some(current) = CURRENT.with(|c| c.borrow().clone()) {
        return Ok(current);
    }
    let stored = Principal::from_js(&db::meta("principal").await?);
    // A principal named meanwhile wins over the stored one.
    Ok(CURRENT.with(|c| c.borrow_mut().get_or_insert(stored).clone()))
}

/// Makes `principal` current, in memory at once and then in IndexedDB.
pub async fn set_current(principal: Principal) -> Result<()> {
    let value = principal.to_js();
    CURRENT.with(|c| *c.borrow_mut() = Some(principal));
    db::set_meta("principal", &value).await
}

/// A sign-out began: nothing goes up until a page names a principal again.
pub fn sign_out() -> Promise {
    // In memory now, in this event's task: a pass that reads it next sends nothing.
    CURRENT.with(|c| *c.borrow_mut() = Some(Principal::SignedOut));
    promise(async {
        set_current(Principal::SignedOut).await?;
        Ok(JsValue::UNDEFINED)
    })
}

/// While held (a page is deciding whether to sign out), no pass starts.
pub fn hold(held: bool) {
    HELD.with(|h| h.set(held));
}

/// The `outbox` strategy of a route.
#[derive(Debug, Clone, Default)]
pub struct Outbox {
    max_age_ms: Option<f64>,
}

impl Outbox {
    /// Entries wait as long as it takes.
    pub fn new() -> Self {
        Outbox::default()
    }

    /// Entries older than `seconds` are dropped and reported instead of sent.
    pub fn max_age_seconds(mut self, seconds: u64) -> Self {
        self.max_age_ms = Some(seconds as f64 * 1000.0);
        self
    }
}

impl Strategy for Outbox {
    fn store(&self) -> Store {
        Store::new("")
    }

    fn respond(&self, handler: StrategyHandler) -> LocalBoxFuture<Result<Response>> {
        let max_age_ms = self.max_age_ms;
        Box::pin(async move {
            let (response, work) = write(handler.request(), max_age_ms).await?;
            if let Some(work) = work {
                handler.wait_until(&work);
            }
            Ok(response)
        })
    }
}

/// A write from a page: sent now, or queued. The response, and background work to keep the SW
/// alive for (the first replay, when the write was queued behind others).
pub async fn write(
    request: &Request,
    max_age_ms: Option<f64>,
) -> Result<(Response, Option<Promise>)> {
    let headers = Headers::new_with_headers(&request.headers())?;
    if let Some(named) = headers.get(PRINCIPAL_HEADER)? {
        headers.delete(PRINCIPAL_HEADER)?;
        let named = js_sys::decode_uri_component(&named)
            .ok()
            .and_then(|json| js_sys::JSON::parse(&String::from(json)).ok())
            .ok_or_else(|| SwError::new("a Nudge-Principal header that is not JSON"))?;
        set_current(Principal::from_js(&named)).await?;
    }
    let key = match headers.get(KEY_HEADER)? {
        Some(key) => key,
        None => new_key()?,
    };
    headers.set(KEY_HEADER, &key)?;
    let method = request.method();
    let body = match method.as_str() {
        "GET" | "HEAD" => JsValue::NULL,
        _ => web::wait(request.array_buffer()?).await?,
    };
    let owner = current().await?.owner();
    let entry = Object::new();
    let set = |name: &str, value: JsValue| Reflect::set(&entry, &name.into(), &value);
    set("key", key.as_str().into())?;
    set("method", method.into())?;
    set("url", request.url().into())?;
    set("headers", Array::from(&headers).into())?;
    set("body", body)?;
    set(
        "principal",
        owner.clone().map_or(JsValue::NULL, JsValue::from),
    )?;
    set("queuedAt", web::now_ms().into())?;
    set("maxAgeMs", max_age_ms.map_or(JsValue::NULL, JsValue::from))?;

    // Behind earlier writes of the same principal, so that the order holds.
    let waiting = db::all().await?.iter().any(|e| owner_of(e) == owner);
    if !waiting {
        match web::fetch(&to_request(&entry)?).await {
            Ok(response) if response.status() != 503 => return Ok((response, None)),
            _ => {}
        }
    }
    let id = db::add(&entry).await?;
    Reflect::set(&entry, &"id".into(), &id.into())?;
    register_sync();
    broadcast(&report("queued", &entry, None, None)?)?;
    let work = if waiting {
        Some(replay())
    } else {
        retry_later();
        None
    };
    Ok((queued_response(id, &key)?, work))
}

/// The 202 that tells the page its write is queued.
fn queued_response(id: f64, key: &str) -> Result<Response> {
    let headers = Headers::new()?;
    headers.set("Content-Type", "application/json")?;
    headers.set("Cache-Control", "no-store")?;
    headers.set(ENTRY_HEADER, &id.to_string())?;
    headers.set(KEY_HEADER, key)?;
    let init = ResponseInit::new();
    init.set_status(202);
    init.set_headers(&headers);
    let body = format!(r#"{{"queued":{{"id":{id},"key":{}}}}}"#, json_string(key));
    Ok(Response::new_with_opt_str_and_init(Some(&body), &init)?)
}

fn json_string(text: &str) -> String {
    js_sys::JSON::stringify(&text.into())
        .ok()
        .and_then(|s| s.as_string())
        .unwrap_or_default()
}

/// A fresh idempotency key.
fn new_key() -> Result<String> {
    let crypto = Reflect::get(&js_sys::global(), &"crypto".into())?;
    let uuid: js_sys::Function = Reflect::get(&crypto, &"randomUUID".into())?.dyn_into()?;
    uuid.call0(&crypto)?
        .as_string()
        .ok_or_else(|| SwError::new("crypto.randomUUID gave no string"))
}

fn field(entry: &Object, name: &str) -> JsValue {
    Reflect::get(entry, &name.into()).unwrap_or_default()
}

fn owner_of(entry: &Object) -> Option<String> {
    field(entry, "principal").as_string()
}

/// The request that (re)sends an entry, the same every time.
fn to_request(entry: &Object) -> Result<Request> {
    let headers = Headers::new()?;
    if let Ok(pairs) = field(entry, "headers").dyn_into::<Array>() {
        for pair in pairs.iter() {
            let pair: Array = pair.unchecked_into();
            let (name, value) = (pair.get(0).as_string(), pair.get(1).as_string());
            if let (Some(name), Some(value)) = (name, value) {
                headers.append(&name, &value)?;
            }
        }
    }
    let init = RequestInit::new();
    init.set_method(&field(entry, "method").as_string().unwrap_or_default());
    init.set_headers(&headers);
    init.set_cache(RequestCache::NoStore);
    let body = field(entry, "body");
    if !body.is_null() && !body.is_undefined() {
        init.set_body(&body);
    }
    let url = field(entry, "url").as_string().unwrap_or_default();
    Ok(Request::new_with_str_and_init(&url, &init)?)
}

/// Asks the browser for a `sync` event once the network is back, where it has Background Sync.
fn register_sync() {
    let sync = web::sw_scope()
        .ok()
        .and_then(|scope| Reflect::get(&scope.registration(), &"sync".into()).ok())
        .filter(|sync| sync.is_object());
    let Some(sync) = sync else { return };
    let register = Reflect::get(&sync, &"register".into())
        .ok()
        .and_then(|f| f.dyn_into::<js_sys::Function>().ok());
    if let Some(register) = register {
        if let Ok(promise) = register.call1(&sync, &SYNC_TAG.into()) {
            // Refused (no permission, say): the other triggers remain.
            quiet(promise.unchecked_into());
        }
    }
}

/// A pass after the backoff, unless one is already due.
fn retry_later() {
    if TIMER.with(|t| t.replace(true)) {
        return;
    }
    let wait = web::delay(backoff_ms(FAILURES.with(Cell::get)));
    quiet(promise(async move {
        web::wait(wait).await?;
        TIMER.with(|t| t.set(false));
        web::wait(replay()).await
    }));
}

/// Lets `work` run on its own; a rejection is logged (debug), never left unhandled.
pub fn quiet(work: Promise) {
    // This promise never rejects: there is nothing to leave unhandled.
    let _ = promise(async move {
        if let Err(error) = web::wait(work).await {
            web::debug(&format!("outbox: {error}"));
        }
        Ok(JsValue::UNDEFINED)
    });
}

/// What passes did: entries sent, entries removed as refused or expired, and whether entries
/// that may go now still wait after a failure (the network, or a server in trouble).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Entries the server took.
    pub sent: u32,
    /// Entries removed without being taken.
    pub failed: u32,
    /// Whether a retryable failure left entries waiting.
    pub waiting: bool,
}

impl Outcome {
    fn to_js(self) -> JsValue {
        let object = Object::new();
        let _ = Reflect::set(&object, &"sent".into(), &self.sent.into());
        let _ = Reflect::set(&object, &"failed".into(), &self.failed.into());
        let _ = Reflect::set(&object, &"waiting".into(), &self.waiting.into());
        object.into()
    }

    /// Read back from a replay promise's value.
    pub fn from_js(value: &JsValue) -> Outcome {
        let get = |name: &str| Reflect::get(value, &name.into()).unwrap_or_default();
        Outcome {
            sent: get("sent").as_f64().unwrap_or(0.0) as u32,
            failed: get("failed").as_f64().unwrap_or(0.0) as u32,
            waiting: get("waiting").as_bool().unwrap_or(false),
        }
    }
}

/// Sends what may go now, one entry at a time, oldest first. Resolves to an [`Outcome`] as a
/// JS object; a call while a pass runs joins it and makes it go once more.
pub fn replay() -> Promise {
    let joined = PASS.with(|pass| pass.borrow().clone());
    if let Some(running) = joined {
        AGAIN.with(|again| again.set(true));
        return running;
    }
    let running = promise(async {
        let mut total = Outcome::default();
        loop {
            let outcome = pass().await;
            // Deciding to stop and leaving happen in one synchronous step: a call either joins
            // this flight or starts the next one, never lost.
            let again = AGAIN.with(|again| again.replace(false));
            let stop = !again || outcome.is_err();
            if stop {
                PASS.with(|pass| pass.borrow_mut().take());
            }
            let outcome = outcome?;
            total.sent += outcome.sent;
            total.failed += outcome.failed;
            total.waiting = outcome.waiting;
            if stop {
                return Ok(total.to_js());
            }
        }
    });
    PASS.with(|pass| *pass.borrow_mut() = Some(running.clone()));
    running
}

/// One pass over the queue.
async fn pass() -> Result<Outcome> {
    let mut outcome = Outcome::default();
    if HELD.with(Cell::get) {
        return Ok(outcome);
    }
    let current = current().await?;
    for entry in db::all().await? {
        let id = field(&entry, "id").as_f64().unwrap_or_default();
        let queued_at = field(&entry, "queuedAt").as_f64().unwrap_or_default();
        if expired(queued_at, field(&entry, "maxAgeMs").as_f64(), web::now_ms()) {
            db::delete(id).await?;
            outcome.failed += 1;
            if !current.may_send(&owner_of(&entry)) {
                // Another account's words are not for these pages.
                Reflect::delete_property(&entry, &"body".into())?;
            }
            broadcast(&report("failed", &entry, Some((0, "expired")), None)?)?;
            continue;
        }
        if !current.may_send(&owner_of(&entry)) || HELD.with(Cell::get) {
            continue;
        }
        let answer = match web::fetch(&to_request(&entry)?).await {
            Ok(response) => response,
            Err(error) => {
                web::debug(&format!("outbox: entry {id} waits: {error}"));
                return Ok(keep(outcome));
            }
        };
        let status = answer.status();
        match verdict(status) {
            Verdict::Keep => return Ok(keep(outcome)),
            verdict => {
                let text = match answer.text() {
                    Ok(text) => web::wait(text).await.unwrap_or_default(),
                    Err(_) => JsValue::NULL,
                };
                db::delete(id).await?;
                FAILURES.with(|f| f.set(0));
                let (kind, why) = match verdict {
                    Verdict::Done => {
                        outcome.sent += 1;
                        ("sent", None)
                    }
                    _ => {
                        outcome.failed += 1;
                        ("failed", Some((status, "refused")))
                    }
                };
                broadcast(&report(kind, &entry, why, Some((status, text)))?)?;
            }
        }
    }
    Ok(outcome)
}

/// A retryable failure: the entry stays, the next pass comes after the backoff.
fn keep(mut outcome: Outcome) -> Outcome {
    FAILURES.with(|f| f.set(f.get().saturating_add(1)));
    retry_later();
    outcome.waiting = true;
    outcome
}

/// `{type: "outbox", event, entry, status?, reason?, response?}`.
fn report(
    event: &str,
    entry: &Object,
    why: Option<(u16, &str)>,
    answer: Option<(u16, JsValue)>,
) -> Result<JsValue> {
    let message = Object::new();
    let set = |name: &str, value: JsValue| Reflect::set(&message, &name.into(), &value);
    set("type", "outbox".into())?;
    set("event", event.into())?;
    // A copy without the headers: the pages need the key, URL, body and principal.
    let shown = Object::assign(&Object::new(), entry);
    Reflect::delete_property(&shown, &"headers".into())?;
    set("entry", shown.into())?;
    if let Some((status, reason)) = why {
        set("status", status.into())?;
        set("reason", reason.into())?;
    }
    if let Some((status, text)) = answer {
        set("status", status.into())?;
        set("response", text)?;
    }
    Ok(message.into())
}

/// Posts `message` to every window of this SW's scope.
fn broadcast(message: &JsValue) -> Result<()> {
    let message = message.clone();
    // Nobody to tell is not a failure of the outbox.
    quiet(promise(async move {
        let options = web_sys::ClientQueryOptions::new();
        options.set_type(web_sys::ClientType::Window);
        let clients = web::sw_scope()?.clients().match_all_with_options(&options);
        let clients: Array = web::wait(clients).await?.unchecked_into();
        for client in clients.iter() {
            client
                .unchecked_ref::<web_sys::Client>()
                .post_message(&message)?;
        }
        Ok(JsValue::UNDEFINED)
    }));
    Ok(())
}

/// The waiting entries of `principal`, oldest first, without their headers.
pub async fn entries(principal: &Principal) -> Result<JsValue> {
    let list = Array::new();
    for entry in db::all().await? {
        if principal.may_send(&owner_of(&entry)) {
            let shown = Object::assign(&Object::new(), &entry);
            Reflect::delete_property(&shown, &"headers".into())?;
            list.push(&shown);
        }
    }
    Ok(list.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_2xx_ends_an_entry_and_only_trouble_keeps_it() {
        for status in [200, 201, 202, 204] {
            assert_eq!(verdict(status), Verdict::Done, "{status}");
        }
        for status in [408, 429, 500, 502, 503, 504] {
            assert_eq!(verdict(status), Verdict::Keep, "{status}");
        }
        for status in [301, 400, 401, 403, 404, 409, 413, 422] {
            assert_eq!(verdict(status), Verdict::Refused, "{status}");
        }
    }

    #[test]
    fn backoff_doubles_up_to_five_minutes() {
        assert_eq!(backoff_ms(0), 2000);
        assert_eq!(backoff_ms(1), 4000);
        assert_eq!(backoff_ms(5), 64_000);
        assert_eq!(backoff_ms(8), 300_000);
        assert_eq!(backoff_ms(u32::MAX), 300_000);
    }

    #[test]
    fn entries_expire_only_past_their_age() {
        assert!(!expired(1000.0, None, 1e12));
        assert!(!expired(1000.0, Some(500.0), 1500.0));
        assert!(expired(1000.0, Some(500.0), 1501.0));
    }

    #[test]
    fn an_entry_goes_up_only_under_its_own_principal() {
        let ann = Some("ann".to_owned());
        assert!(Principal::Is(ann.clone()).may_send(&ann));
        assert!(!Principal::Is(Some("bob".into())).may_send(&ann));
        assert!(!Principal::Is(None).may_send(&ann));
        assert!(Principal::Is(None).may_send(&None));
        assert!(!Principal::SignedOut.may_send(&ann));
        assert!(!Principal::SignedOut.may_send(&None));
    }
}
