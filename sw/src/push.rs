//! Web Push: the wake-up when no page is open. The push names what changed, the SW refreshes
//! it into its cache, and only then tells the person.
//!
//! The server's push carries `{"changes":[{"url","topic"}, …]}` and nothing else (never
//! content). For each same-origin URL the route table caches, the SW runs the revalidation a
//! nudge runs ([`crate::nudge`]: a conditional GET with the person's own credentials, and
//! `updated` to the open tabs), so a click on the notification opens fresh data even if the
//! network is gone by then. The notification is worded from the refreshed copy by the table's
//! [`Notices`](crate::notify::Notices). None is shown for a URL that a focused window already
//! shows: the SW asks each focused window (`{type:"showing?"}` on a `MessagePort`; the page
//! library answers `{type:"showing", paths}` with what `watch()` was given, `null` for every
//! URL); a window that does not answer within [`ASK_MS`] shows nothing of ours. A payload of
//! any other shape is ignored: nothing is fetched and nothing shown.
//!
//! `notificationclick` focuses a window of the app (navigated to the notice's page) or opens one.

use std::rc::Rc;

use js_sys::{Array, Object, Promise, Reflect, JSON};
use wasm_bindgen::prelude::*;
use web_sys::{
    ClientQueryOptions, ClientType, MessageChannel, Notification, NotificationOptions,
    PushMessageData, Request, WindowClient,
};

use crate::error::Result;
use crate::notify::{count_new, fill, Notice};
use crate::nudge::{self, OnUpdate};
use crate::store::{Store, PRIVATE_CACHE};
use crate::web;
use crate::worker::Worker;

/// How long a focused window may take to say what it shows.
pub const ASK_MS: i32 = 1000;

/// Changes read from one push at most: a push names one topic's few URLs.
pub const MAX_CHANGES: usize = 32;

/// One changed resource a push names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The URL, absolute on the SW's origin.
    pub url: String,
    /// The topic the change was published on, if given (the notification's tag).
    pub topic: Option<String>,
}

/// The changes a push's payload names: same-origin URLs only (a push must not make the SW
/// fetch elsewhere), each once; empty for anything that is not `{"changes":[…]}`.
pub fn changes(data: Option<&PushMessageData>) -> Vec<Change> {
    let Some(parsed) = data.and_then(|data| JSON::parse(&data.text()).ok()) else {
        return Vec::new();
    };
    let field = |value: &JsValue, name: &str| Reflect::get(value, &name.into()).ok();
    let list = match field(&parsed, "changes") {
        Some(list) if parsed.is_object() && Array::is_array(&list) => Array::from(&list),
        _ => return Vec::new(),
    };
    let own = format!("{}/", web::origin());
    let mut found: Vec<Change> = Vec::new();
    for item in list.iter().take(MAX_CHANGES) {
        if !item.is_object() {
            continue;
        }
        let Some(url) = field(&item, "url").and_then(|u| u.as_string()) else {
            continue;
        };
        let url = web::resolve(&url);
        if !url.starts_with(&own) || found.iter().any(|c| c.url == url) {
            continue;
        }
        let topic = field(&item, "topic").and_then(|t| t.as_string());
        found.push(Change { url, topic });
    }
    found
}

/// A change after its refresh: its path as pages say it, its notice, how many items are new.
struct Refreshed {
    change: Change,
    path: String,
    notice: Option<(Notice, Vec<(String, String)>)>,
    new_items: usize,
}

/// The work of one `push` event, for its `waitUntil`.
pub async fn on_push(
    worker: Rc<Worker>,
    changes: Vec<Change>,
    on_update: OnUpdate,
) -> Result<JsValue> {
    if changes.is_empty() {
        return Ok(JsValue::UNDEFINED);
    }
    let origin = web::origin();
    let mut refreshed = Vec::new();
    for change in changes {
        let url = web_sys::Url::new(&change.url)?;
        let path = url.pathname() + &url.search();
        let notice = worker
            .notices()
            .find(&url.pathname(), &origin)
            .map(|(notice, params)| (notice.clone(), params));
        let store = worker.nudge_store(&change.url);
        let counted = notice.as_ref().and_then(|(n, _)| n.count.clone());
        let keys = |store: Option<Store>| {
            let (url, notice) = (change.url.clone(), notice.clone());
            let counted = counted.clone();
            async move {
                let (Some(store), Some(field), Some((notice, _))) = (store, counted, notice) else {
                    return None;
                };
                match cached_keys(&store, &url, &field, &notice.key).await {
                    Ok(keys) => keys,
                    Err(error) => {
                        web::warn(&format!("push: reading the cached {url}: {error}"));
                        None
                    }
                }
            }
        };
        let before = keys(store.clone()).await;
        if let Some(store) = &store {
            // The nudge's own path: one conditional GET, folded with a nudge in flight.
            let flight = nudge::nudge(store, &change.url, None, on_update);
            if let Err(error) = web::wait(flight).await {
                // Offline now: the notification still says something changed.
                web::warn(&format!("push: refreshing {}: {error}", change.url));
            }
        }
        let fresh = keys(store).await.unwrap_or_default();
        refreshed.push(Refreshed {
            change,
            path,
            notice,
            new_items: count_new(before.as_deref(), &fresh),
        });
    }
    let shown = shown_by_focused_windows().await?;
    refreshed.retain(|r| {
        !shown
            .iter()
            .any(|paths| paths.as_ref().is_none_or(|paths| paths.contains(&r.path)))
    });
    let Some(first) = refreshed.first() else {
        return Ok(JsValue::UNDEFINED); // every URL is on screen already
    };
    let pick = refreshed
        .iter()
        .find(|r| r.notice.is_some())
        .unwrap_or(first);
    let (notice, params) = match &pick.notice {
        Some((notice, params)) => (notice.clone(), params.clone()),
        None => (worker.notices().default_for(&host()), Vec::new()),
    };
    let tag = pick.change.topic.clone().unwrap_or(pick.change.url.clone());
    show(&notice, &params, &tag, pick.new_items).await?;
    Ok(JsValue::UNDEFINED)
}

fn host() -> String {
    web::scope().location().host()
}

/// The keys of the items in the list field `field` of `url`'s cached JSON body (both the
/// store's cache and the private one), `None` when nothing is cached or it is not JSON.
async fn cached_keys(
    store: &Store,
    url: &str,
    field: &str,
    key: &str,
) -> Result<Option<Vec<String>>> {
    let request = Request::new_with_str(url)?;
    let mut found = None;
    for name in [store.name(), PRIVATE_CACHE] {
        // By URL: the notice wants the resource, whichever variant the page stored.
        found = web::storage_match(name, &request, true).await?;
        if found.is_some() {
            break;
        }
    }
    let Some(response) = found else {
        return Ok(None);
    };
    let Ok(body) = web::wait(response.json()?).await else {
        return Ok(None);
    };
    let list = Reflect::get(&body, &field.into()).unwrap_or(JsValue::UNDEFINED);
    if !Array::is_array(&list) {
        return Ok(Some(Vec::new()));
    }
    let keys = Array::from(&list)
        .iter()
        .map(|item| {
            let id = Reflect::get(&item, &key.into()).unwrap_or(JsValue::UNDEFINED);
            let id = if id.is_undefined() { item } else { id };
            JSON::stringify(&id).map(String::from).unwrap_or_default()
        })
        .collect();
    Ok(Some(keys))
}

/// Shows the notice's notification, tagged `tag` so that a newer one for the same topic
/// replaces it; `{count}` adds the new items the one it replaces announced.
async fn show(
    notice: &Notice,
    params: &[(String, String)],
    tag: &str,
    new_items: usize,
) -> Result<()> {
    let registration = web::sw_scope()?.registration();
    let mut count = new_items;
    if notice.count.is_some() {
        let open: Array = web::wait(registration.get_notifications()?)
            .await?
            .unchecked_into();
        for shown in open.iter() {
            let shown: Notification = shown.unchecked_into();
            if shown.tag().as_deref() == Some(tag) {
                let before = Reflect::get(&shown.data(), &"count".into()).unwrap_or_default();
                count += before.as_f64().unwrap_or(0.0) as usize;
            }
        }
    }
    // At least one: the push says something changed, even when this browser's copy had it
    // already (a tab's stream refreshed it first, in a window that is not in front).
    let count = notice.count.as_ref().map(|_| count.max(1));
    let data = Object::new();
    Reflect::set(
        &data,
        &"url".into(),
        &fill(&notice.open, params, count).into(),
    )?;
    if let Some(count) = count {
        Reflect::set(&data, &"count".into(), &(count as f64).into())?;
    }
    let options = NotificationOptions::new();
    options.set_body(&fill(&notice.body, params, count));
    options.set_tag(tag);
    options.set_data(&data);
    let title = fill(&notice.title, params, count);
    web::wait(registration.show_notification_with_options(&title, &options)?).await?;
    Ok(())
}

/// The window clients of this origin, controlled by this SW or not.
async fn windows() -> Result<Vec<WindowClient>> {
    let options = ClientQueryOptions::new();
    options.set_type(ClientType::Window);
    options.set_include_uncontrolled(true);
    let clients = web::sw_scope()?.clients().match_all_with_options(&options);
    let clients: Array = web::wait(clients).await?.unchecked_into();
    Ok(clients.iter().map(|c| c.unchecked_into()).collect())
}

/// What each focused window says it shows: `Some(paths)`, or `None` for every URL. Windows
/// that do not answer are left out. The windows are asked all at once.
async fn shown_by_focused_windows() -> Result<Vec<Option<Vec<String>>>> {
    let mut asks = Vec::new();
    for window in windows().await? {
        if window.focused() {
            asks.push(Ask::send(&window)?);
        }
    }
    let mut shown = Vec::new();
    for ask in asks {
        if let Some(paths) = ask.answer().await? {
            shown.push(paths);
        }
    }
    Ok(shown)
}

/// One `showing?` question in flight, on a channel of its own.
struct Ask {
    port: web_sys::MessagePort,
    /// Resolves to the answer's `MessageEvent`: the port calls `resolve` itself.
    answer: Promise,
}

impl Ask {
    fn send(window: &WindowClient) -> Result<Ask> {
        let channel = MessageChannel::new()?;
        let port = channel.port1();
        let answer = Promise::new(&mut |resolve, _reject| port.set_onmessage(Some(&resolve)));
        let question = Object::new();
        Reflect::set(&question, &"type".into(), &"showing?".into())?;
        window.post_message_with_transfer(&question, &Array::of1(&channel.port2()))?;
        Ok(Ask { port, answer })
    }

    /// `Some(None)`: every URL; `Some(Some(paths))`; `None`: no answer in time, or not ours.
    async fn answer(self) -> Result<Option<Option<Vec<String>>>> {
        let race = Promise::race(&Array::of2(&self.answer, &web::delay(ASK_MS)));
        let event = web::wait(race).await?;
        self.port.set_onmessage(None);
        self.port.close();
        let reply = Reflect::get(&event, &"data".into()).unwrap_or_default();
        let field = |name: &str| Reflect::get(&reply, &name.into()).unwrap_or_default();
        if !reply.is_object() || field("type").as_string().as_deref() != Some("showing") {
            return Ok(None);
        }
        let paths = field("paths");
        if paths.is_null() {
            return Ok(Some(None));
        }
        if !Array::is_array(&paths) {
            return Ok(None);
        }
        let paths = Array::from(&paths)
            .iter()
            .filter_map(|p| p.as_string())
            .collect();
        Ok(Some(Some(paths)))
    }
}

/// The work of one `notificationclick`: focus a window of the app, navigated to the notice's
/// page, or open one there.
pub async fn on_click(notification: Notification) -> Result<JsValue> {
    notification.close();
    let wanted = Reflect::get(&notification.data(), &"url".into())
        .ok()
        .and_then(|url| url.as_string())
        .map(|url| web::resolve(&url))
        .filter(|url| url.starts_with(&format!("{}/", web::origin())))
        .unwrap_or_else(|| web::resolve("/"));
    let windows = windows().await?;
    let at_target = windows.iter().find(|w| w.url() == wanted);
    let Some(window) = at_target.or(windows.first()) else {
        web::wait(web::sw_scope()?.clients().open_window(&wanted)).await?;
        return Ok(JsValue::UNDEFINED);
    };
    let focused: WindowClient = web::wait(window.focus()?).await?.unchecked_into();
    if focused.url() != wanted {
        // Only a window this SW controls can be navigated; another one stays where it is.
        match focused.navigate(&wanted) {
            Ok(navigation) => {
                if let Err(error) = web::wait(navigation).await {
                    web::warn(&format!(
                        "notificationclick: navigating to {wanted}: {error}"
                    ));
                }
            }
            Err(error) => web::warn(&format!("notificationclick: {:?}", error)),
        }
    }
    Ok(JsValue::UNDEFINED)
}
