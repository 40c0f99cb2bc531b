//! The entry points the JS loader hands every event to.
//!
//! Each one decides synchronously what to do with its event (above all, whether to call
//! `respondWith`), then hands any asynchronous work to the browser as a promise through
//! `respondWith` or `waitUntil`, so the SW is not stopped half-way. Nothing here panics on an
//! event's path: failures are logged and become rejected promises.

use std::rc::Rc;

use js_sys::{Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use web_sys::{
    Client, ClientQueryOptions, ClientType, ExtendableEvent, ExtendableMessageEvent, FetchEvent,
    MessagePort, Request, RequestCache, RequestMode,
};

use crate::config::{self, Handler};
use crate::error::{Result, SwError};
use crate::messages::{Incoming, OutboxOp, Outgoing};
use crate::notify::Notices;
use crate::precache::{self, Manifest};
use crate::router::{RequestInfo, Route, Router};
use crate::store::{self, Store, PRIVATE_CACHE};
use crate::table::{self, Table};
use crate::{nudge, outbox, web};

/// What the SW builds once per start: the manifest to install and the routes.
pub struct Worker {
    manifest: Manifest,
    router: Router<Handler>,
    /// Whether a route queues writes (the outbox is then replayed at start).
    outbox: bool,
    /// Whether navigations go network-first through the SW (navigation preload is then on).
    navigation_preload: bool,
    notices: Notices,
}

impl Worker {
    /// The worker for this start: the table in `self.NUDGE_ROUTES` when the loader set one,
    /// nudge's own otherwise.
    fn from_global() -> Worker {
        let routes = Reflect::get(&js_sys::global(), &JsValue::from_str("NUDGE_ROUTES"))
            .unwrap_or(JsValue::UNDEFINED);
        Worker::new(
            (!routes.is_undefined()).then_some(&routes),
            Manifest::from_global(),
        )
    }

    /// nudge's route table when `routes` is `None`, else the given table (see [`table`]). An
    /// invalid table is reported with `console.error` and gives a worker that intercepts
    /// nothing and precaches nothing: the app then works as if it had no SW, which is safer
    /// than guessing which half of a broken table was meant.
    pub fn new(routes: Option<&JsValue>, manifest: Manifest) -> Worker {
        let Some(routes) = routes else {
            let router = config::router(&manifest);
            let notices = config::notices();
            return Worker {
                manifest,
                router,
                outbox: true,
                navigation_preload: true,
                notices,
            };
        };
        match table::from_js(routes).and_then(|spec| spec.build(manifest)) {
            Ok(Table {
                router,
                manifest,
                outbox,
                navigation_preload,
                notices,
            }) => Worker {
                manifest,
                router,
                outbox,
                navigation_preload,
                notices,
            },
            Err(error) => {
                web::error(&format!(
                    "invalid route table (self.NUDGE_ROUTES): {error}. Intercepting nothing: \
                     every request goes to the network as if there were no ServiceWorker."
                ));
                Worker {
                    manifest: Manifest::default(),
                    router: Router::new(),
                    outbox: false,
                    navigation_preload: false,
                    notices: Notices::new(),
                }
            }
        }
    }

    /// The routes.
    pub fn router(&self) -> &Router<Handler> {
        &self.router
    }

    /// How a push's notification is worded.
    pub fn notices(&self) -> &Notices {
        &self.notices
    }

    /// Calls `respondWith` when a route takes the event's request; `false` when it did not,
    /// and the browser goes on as if there were no SW.
    pub fn fetch(&self, event: &FetchEvent) -> bool {
        let request = event.request();
        let Some(handler) = find_route(&self.router, &request).and_then(|r| r.handler.clone())
        else {
            return false;
        };
        let answer = handler.handle(request, Some(event.clone().unchecked_into()));
        let answer = promise(async move { Ok(answer.await?.into()) });
        if let Err(error) = event.respond_with(&answer) {
            web::warn(&format!("respondWith refused: {}", SwError::from(error)));
        }
        true
    }

    /// The store that a nudge for `url` refreshes: that of the route a GET for it would take,
    /// so nudges follow whichever table is in force; `None` when that route keeps nothing.
    pub fn nudge_store(&self, url: &str) -> Option<Store> {
        let request = Request::new_with_str(&web::resolve(url)).ok()?;
        let handler = find_route(&self.router, &request)?.handler.as_ref()?;
        handler.nudge_store()
    }
}

thread_local! {
    static WORKER: Rc<Worker> = Rc::new(Worker::from_global());
}

fn worker() -> Rc<Worker> {
    WORKER.with(Rc::clone)
}

/// Called by the loader right after instantiation, so that the route table is read (and an
/// invalid one reported) when the SW script is evaluated, not at the first event.
#[wasm_bindgen]
pub fn on_start() {
    // Writes queued before the SW stopped go up now if the network is there (a failure
    // leaves them for the next trigger).
    if worker().outbox {
        outbox::quiet(outbox::replay());
    }
}

/// Turns a `Result` future into a promise for `respondWith`/`waitUntil`.
fn promise<F>(work: F) -> Promise
where
    F: std::future::Future<Output = Result<JsValue>> + 'static,
{
    web::promise(work)
}

fn extend(event: &ExtendableEvent, what: &str, work: Promise) {
    if let Err(error) = event.wait_until(&work) {
        web::warn(&format!(
            "{what}: waitUntil refused: {}",
            SwError::from(error)
        ));
    }
}

/// `install`: precaches the shell. The new SW then waits until the page asks it to take over
/// (`skip-waiting`), so a tab never runs old page code against a new SW.
#[wasm_bindgen]
pub fn on_install(event: ExtendableEvent) {
    let worker = worker();
    extend(
        &event,
        "install",
        promise(async move {
            precache::install(&worker.manifest).await?;
            Ok(JsValue::UNDEFINED)
        }),
    );
}

/// `activate`: drops precaches of older versions and takes control of open tabs, so that the
/// first visit is controlled without a reload.
#[wasm_bindgen]
pub fn on_activate(event: ExtendableEvent) {
    let worker = worker();
    extend(
        &event,
        "activate",
        promise(async move {
            for name in precache::activate(&worker.manifest).await? {
                web::debug(&format!("deleted the old precache {name}"));
            }
            navigation_preload(worker.navigation_preload).await;
            web::wait(web::sw_scope()?.clients().claim()).await?;
            Ok(JsValue::UNDEFINED)
        }),
    );
}

/// Turns navigation preload on where the browser has it and navigations go network-first
/// through the SW (the navigation's request then starts while the SW starts), off otherwise,
/// since a preload that no route reads is a second request for every page load.
async fn navigation_preload(on: bool) {
    let Ok(scope) = web::sw_scope() else { return };
    let Ok(preload) = Reflect::get(&scope.registration(), &"navigationPreload".into()) else {
        return;
    };
    let method = if on { "enable" } else { "disable" };
    let call = Reflect::get(&preload, &method.into())
        .ok()
        .and_then(|f| f.dyn_into::<js_sys::Function>().ok());
    if let Some(Ok(promise)) = call.map(|f| f.call0(&preload)) {
        if let Err(error) = web::wait(promise.unchecked_into()).await {
            web::warn(&format!("navigation preload: {error}"));
        }
    }
}

/// `sync` (Background Sync): the network is back, send what the outbox holds. A pass that
/// leaves entries after a failure rejects, so the browser tries again later with its own
/// backoff; entries held for another principal do not count.
#[wasm_bindgen]
pub fn on_sync(event: ExtendableEvent) {
    let tag = Reflect::get(&event, &"tag".into()).unwrap_or_default();
    if tag.as_string().as_deref() != Some(outbox::SYNC_TAG) {
        return;
    }
    let pass = outbox::replay();
    extend(
        &event,
        "sync",
        promise(async move {
            let outcome = outbox::Outcome::from_js(&web::wait(pass).await?);
            if outcome.waiting {
                return Err(SwError::new("outbox entries still wait"));
            }
            Ok(JsValue::UNDEFINED)
        }),
    );
}

/// `fetch`: the router decides now; no route means no `respondWith`, and the browser goes on
/// as if there were no SW.
#[wasm_bindgen]
pub fn on_fetch(event: FetchEvent) {
    worker().fetch(&event);
}

/// The route that takes `request`, if any (public for the tests, which route real requests).
pub fn find_route<'r>(
    router: &'r Router<Handler>,
    request: &Request,
) -> Option<&'r Route<Handler>> {
    let url = web_sys::Url::new(&request.url()).ok()?;
    let path = url.pathname();
    let method = request.method();
    let origin = url.origin();
    router.find(&RequestInfo {
        method: &method,
        path: &path,
        origin: &origin,
        same_origin: origin == web::origin(),
        navigate: request.mode() == RequestMode::Navigate,
        only_if_cached: request.cache() == RequestCache::OnlyIfCached,
    })
}

/// `message`: nudges, `skip-waiting` and `sign-out` from the pages; anything else is ignored.
#[wasm_bindgen]
pub fn on_message(event: ExtendableMessageEvent) {
    let Some(message) = Incoming::from_js(&event.data()) else {
        return;
    };
    match message {
        Incoming::SkipWaiting => match web::sw_scope().and_then(|s| Ok(s.skip_waiting()?)) {
            Ok(skip) => extend(&event, "skip-waiting", skip),
            Err(error) => web::warn(&format!("skip-waiting: {error}")),
        },
        Incoming::Nudge { url, etag } => {
            // Only our own origin's URLs: a nudge must not turn the SW into a fetch proxy.
            if !web::resolve(&url).starts_with(&format!("{}/", web::origin())) {
                return;
            }
            let flight = worker()
                .nudge_store(&url)
                .map(|store| nudge::nudge(&store, &url, etag, broadcast_updated));
            let reply_to = reply_target(&event);
            extend(
                &event,
                "nudge",
                promise(async move {
                    // A URL that no caching route takes still gets its reply, so no page waits.
                    let updated = match flight {
                        Some(flight) => web::wait(flight).await?.as_bool().unwrap_or(false),
                        None => false,
                    };
                    if let Some(target) = reply_to {
                        post(&target, &Outgoing::Nudged { url, updated })?;
                    }
                    Ok(JsValue::UNDEFINED)
                }),
            );
        }
        Incoming::Outbox { op, principal } => {
            let reply_to = reply_target(&event);
            extend(
                &event,
                "outbox",
                promise(async move {
                    if let Some(principal) = principal {
                        outbox::set_current(principal).await?;
                    }
                    match op {
                        OutboxOp::Hold => outbox::hold(true),
                        OutboxOp::Release | OutboxOp::Flush => {
                            if op == OutboxOp::Release {
                                outbox::hold(false);
                            }
                            web::wait(outbox::replay()).await?;
                        }
                        OutboxOp::List => {
                            let entries = outbox::entries(&outbox::current().await?).await?;
                            if let Some(target) = reply_to {
                                let reply = Object::new();
                                Reflect::set(&reply, &"type".into(), &"outbox-entries".into())?;
                                Reflect::set(&reply, &"entries".into(), &entries)?;
                                post_value(&target, &reply)?;
                            }
                        }
                    }
                    Ok(JsValue::UNDEFINED)
                }),
            );
        }
        Incoming::SignOut => {
            let reply_to = reply_target(&event);
            // Begun now, in the event's own task: from here on no older request's private
            // answer is stored, whenever it arrives, and no outbox entry goes up.
            let held = outbox::sign_out();
            let deleted = sign_out();
            extend(
                &event,
                "sign-out",
                promise(async move {
                    deleted.await?;
                    web::wait(held).await?;
                    if let Some(target) = reply_to {
                        post(&target, &Outgoing::SignedOut)?;
                    }
                    Ok(JsValue::UNDEFINED)
                }),
            );
        }
    }
}

/// `push`: refreshes what the push names, then tells the person ([`crate::push`]).
#[wasm_bindgen]
pub fn on_push(event: web_sys::PushEvent) {
    let changes = crate::push::changes(event.data().as_ref());
    let work = crate::push::on_push(worker(), changes, broadcast_updated);
    extend(&event, "push", promise(work));
}

/// `notificationclick`: focuses or opens the page the notification is about.
#[wasm_bindgen]
pub fn on_notification_click(event: web_sys::NotificationEvent) {
    let work = crate::push::on_click(event.notification());
    extend(&event, "notificationclick", promise(work));
}

/// Forgets every private response; public ones stay, since they are the same for every user.
/// The cache is deleted rather than emptied entry by entry: one step, nothing half-done. The
/// new epoch begins when this is called (not when the future is first polled), so a private
/// answer to a request already in flight is refused even if it arrives before the deletion.
pub fn sign_out() -> impl std::future::Future<Output = Result<()>> {
    store::begin_sign_out();
    async {
        web::delete_cache(PRIVATE_CACHE).await?;
        Ok(())
    }
}

/// Where a reply goes: the `MessagePort` the sender passed, or else the sending client.
fn reply_target(event: &ExtendableMessageEvent) -> Option<Object> {
    let port = event.ports().get(0);
    if port.is_instance_of::<MessagePort>() {
        return Some(port.unchecked_into());
    }
    event.source()
}

/// Posts `message` with `target.postMessage` (a `Client` and a `MessagePort` both have it).
fn post(target: &Object, message: &Outgoing) -> Result<()> {
    post_value(target, &message.to_js()?)
}

/// Posts any value with `target.postMessage`.
fn post_value(target: &Object, value: &JsValue) -> Result<()> {
    let post_message: js_sys::Function =
        js_sys::Reflect::get(target, &JsValue::from_str("postMessage"))?.dyn_into()?;
    post_message.call1(target, value)?;
    Ok(())
}

/// Tells every window this SW can see that `url` has a new version in the cache.
fn broadcast_updated(url: &str) -> Promise {
    let url = url.to_owned();
    promise(async move {
        let options = ClientQueryOptions::new();
        options.set_type(ClientType::Window);
        let clients = web::sw_scope()?.clients().match_all_with_options(&options);
        let clients: js_sys::Array = web::wait(clients).await?.unchecked_into();
        let message = Outgoing::Updated { url };
        for client in clients.iter() {
            post(client.unchecked_ref::<Client>(), &message)?;
        }
        Ok(JsValue::UNDEFINED)
    })
}
