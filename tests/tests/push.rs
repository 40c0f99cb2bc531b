//! Web Push reaching the ServiceWorker: the push names a room's `recent`; the SW refreshes it
//! into its cache (the new message is then in Cache Storage) and only then shows a notification
//! worded from that copy ("#general", "New messages: 1"), unless a focused window already shows
//! that room.
//!
//! Headless Chromium has no push service, so the push is handed to the SW through DevTools
//! (`ServiceWorker.deliverPushMessage`), with the payload the server sends.

use std::time::Duration;

use anyhow::ensure;
use nudge_e2e::browser::Viewport;
use nudge_e2e::page::{cached_recent, click, open_controlled, wait_for_page, POLL};
use nudge_e2e::push::{stand_in_push_manager, PushService, Shown, PUSH_EVENTS};
use nudge_e2e::{finish, spawn_app_with, wait_until, AppOptions, Browser, TestApp};
use serde_json::json;

/// Page loads, SW installs and a push's refresh on a busy machine.
const SETTLE: Duration = Duration::from_secs(20);

/// The payload the server pushes for a change to `room`.
fn push_for(room: &str) -> String {
    let url = format!("/api/rooms/{room}/recent");
    json!({"changes": [{"url": url, "topic": format!("rooms/{room}")}]}).to_string()
}

async fn start(name: &str) -> anyhow::Result<(TestApp, Browser)> {
    let app = spawn_app_with(AppOptions {
        push: true,
        ..AppOptions::default()
    })
    .await?;
    for room in ["general", "random"] {
        app.post_message(room, "Seeder", &format!("hello {room}"))
            .await?;
    }
    let browser = Browser::launch_with(name, Viewport::DESKTOP, PUSH_EVENTS).await?;
    Ok((app, browser))
}

/// Opens the room under the SW and waits until the SW has stored its `recent`; returns the
/// registration id DevTools knows the SW by.
async fn open_room(app: &TestApp, browser: &Browser, room: &str) -> anyhow::Result<String> {
    browser.grant_notifications(app.base_url()).await?;
    open_controlled(browser, &app.url(&format!("/#{room}")), SETTLE).await?;
    wait_until("the SW to store the room", SETTLE, POLL, || {
        cached_recent(browser, room)
    })
    .await?;
    browser
        .registration_id(&format!("{}/", app.base_url()), SETTLE)
        .await
}

async fn wait_for_notification(browser: &Browser, title: &str) -> anyhow::Result<Shown> {
    wait_until(
        &format!("a notification titled {title:?}"),
        SETTLE,
        POLL,
        || async {
            let shown = browser.notifications().await?;
            Ok(shown.into_iter().find(|n| n.title == title))
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_refreshes_the_cache_then_notifies_with_no_page_open() -> anyhow::Result<()> {
    let (app, browser) = start("push-closed").await?;
    let outcome = refreshes_then_notifies(&app, &browser).await;
    finish(&app, [browser], outcome).await
}

async fn refreshes_then_notifies(app: &TestApp, browser: &Browser) -> anyhow::Result<()> {
    let id = open_room(app, browser, "general").await?;
    // The person leaves: no page of the app is open, and the browser stops the idle SW.
    browser.goto("about:blank").await?;
    browser.stop_service_workers().await?;
    app.post_message("general", "Ann", "pushed while away")
        .await?;

    // Payloads of any other shape are ignored: nothing fetched, nothing shown. They go first,
    // so any notification of theirs would be there before the real push's.
    for junk in [
        "not JSON".to_owned(),
        json!({"changes": "rooms/general"}).to_string(),
        json!({"changes": [{"url": "https://elsewhere.example/api/rooms/general/recent"}]})
            .to_string(),
        json!({"changes": [{"topic": "rooms/general"}, 7, null]}).to_string(),
    ] {
        browser.deliver_push(app.base_url(), &id, &junk).await?;
    }
    browser
        .deliver_push(app.base_url(), &id, &push_for("general"))
        .await?;

    // A same-origin document that reads nothing through the SW's API routes, so whatever is in
    // the cache now was put there by the push's refresh.
    browser.goto(&app.url("/style.css")).await?;
    let cached = wait_until(
        "the pushed message in the SW's cache",
        SETTLE,
        POLL,
        || async {
            let body = cached_recent(browser, "general").await?;
            Ok(body.filter(|b| b.contains("pushed while away")))
        },
    )
    .await?;
    ensure!(
        cached.contains("hello general"),
        "the refreshed copy: {cached}"
    );
    let shown = wait_for_notification(browser, "#general").await?;
    ensure!(
        shown.body == "New messages: 1" && shown.tag == "rooms/general",
        "the notification: {shown:?}"
    );
    ensure!(
        shown.url.as_deref() == Some("/#general"),
        "a click opens the room: {shown:?}"
    );
    let all = browser.notifications().await?;
    ensure!(all.len() == 1, "one push, one notification: {all:?}");

    // Another message before the person looked: the room's notification is replaced by one
    // that counts both.
    app.post_message("general", "Ann", "and another").await?;
    browser
        .deliver_push(app.base_url(), &id, &push_for("general"))
        .await?;
    let shown = wait_until("the notification to count two", SETTLE, POLL, || async {
        let shown = browser.notifications().await?;
        Ok(shown.into_iter().find(|n| n.body == "New messages: 2"))
    })
    .await?;
    ensure!(shown.title == "#general", "{shown:?}");
    let all = browser.notifications().await?;
    ensure!(all.len() == 1, "one notification per room: {all:?}");

    // The cached copy is what the room shows offline: the pushed message is there.
    let offline = browser
        .eval::<String>(
            r#"
            const res = await fetch("/api/rooms/general/recent", { cache: "only-if-cached", mode: "same-origin" });
            return await res.text();
            "#,
        )
        .await?;
    ensure!(
        offline.contains("and another"),
        "read from the cache: {offline}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_notification_for_the_room_a_focused_window_shows() -> anyhow::Result<()> {
    let (app, browser) = start("push-focused").await?;
    let outcome = none_for_the_room_on_screen(&app, &browser).await;
    finish(&app, [browser], outcome).await
}

async fn none_for_the_room_on_screen(app: &TestApp, browser: &Browser) -> anyhow::Result<()> {
    let id = open_room(app, browser, "general").await?;
    let focused: bool = browser.eval("return document.hasFocus();").await?;
    ensure!(focused, "the window shows the room and has the focus");
    app.post_message("general", "Ann", "seen on screen").await?;
    app.post_message("random", "Bob", "elsewhere").await?;

    // What the page says when asked what it shows (the SW's question, asked here directly):
    // the room's URLs, given to `nudge.watch`.
    let paths: Vec<String> = browser
        .eval(
            r#"
            const channel = new MessageChannel();
            const answer = new Promise((resolve) => (channel.port1.onmessage = (e) => resolve(e.data)));
            navigator.serviceWorker.dispatchEvent(
                new MessageEvent("message", { data: { type: "showing?" }, ports: [channel.port2] }));
            const reply = await answer;
            return reply.type === "showing" ? reply.paths : null;
            "#,
        )
        .await?;
    ensure!(
        paths.iter().any(|p| p == "/api/rooms/general/recent"),
        "the page says it shows {paths:?}"
    );
    // Counts the SW's questions to this window ("what do you show?"); the page's own listener
    // answers them.
    browser
        .eval::<()>(
            r#"
            window.asked = 0;
            navigator.serviceWorker.addEventListener("message", (e) => {
                if (e.data && e.data.type === "showing?") window.asked += 1;
            });
            "#,
        )
        .await?;
    browser
        .deliver_push(app.base_url(), &id, &push_for("general"))
        .await?;
    // Once the window has answered, the SW decides without waiting for anything else: any
    // notification for the room would then be shown before the next push's.
    wait_until(
        "the SW to ask the window what it shows",
        SETTLE,
        POLL,
        || async {
            let asked: u32 = browser.eval("return window.asked;").await?;
            Ok((asked >= 1).then_some(()))
        },
    )
    .await?;
    browser
        .deliver_push(app.base_url(), &id, &push_for("random"))
        .await?;
    let random = wait_for_notification(browser, "#random").await?;
    // This browser never read that room: both of its messages are new to it.
    ensure!(random.body == "New messages: 2", "{random:?}");
    let all = browser.notifications().await?;
    ensure!(
        all.iter().all(|n| n.title != "#general"),
        "the room on screen got a notification: {all:?}"
    );
    // The page still got the new message (the stream's nudge, or the push's `updated`).
    wait_for_page(browser, "the new message on screen", SETTLE, |s| {
        s.messages.iter().any(|(_, text)| text == "seen on screen")
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_me_subscribes_this_browser_and_the_server_pushes_to_it() -> anyhow::Result<()> {
    let (app, browser) = start("push-notify-me").await?;
    let outcome = notify_me(&app, &browser).await;
    finish(&app, [browser], outcome).await
}

async fn notify_me(app: &TestApp, browser: &Browser) -> anyhow::Result<()> {
    let mut service = PushService::start().await?;
    open_room(app, browser, "general").await?;
    stand_in_push_manager(browser, &service.endpoint).await?;
    wait_for_button(browser, "off").await?;

    click(browser, "notify").await?;
    wait_for_button(browser, "on").await?;
    // Subscribed with the server's key, every push to be shown.
    let (visible, key): (bool, String) = browser
        .eval(
            r#"
            const { publicKey } = await (await fetch("/api/push/key", { cache: "no-store" })).json();
            return [window.subscribedWith.userVisibleOnly, publicKey === window.subscribedWith.key ? "same" : publicKey];
            "#,
        )
        .await?;
    ensure!(visible && key == "same", "subscribed with {visible}, {key}");

    // The server now pushes a room's change to this browser's endpoint, with a Topic.
    app.post_message("general", "Ann", "to the push service")
        .await?;
    let push = service.next(SETTLE).await?;
    ensure!(
        push.line.starts_with("POST /push/e2e ") && push.body_len > 0,
        "{push:?}"
    );
    ensure!(
        push.header("topic").is_some() && push.header("ttl").is_some(),
        "{push:?}"
    );
    ensure!(
        push.header("content-encoding") == Some("aes128gcm"),
        "{push:?}"
    );

    // The choice is this room's: another room's button is off, and this one's on again.
    browser
        .eval::<bool>("location.hash = 'random'; return true;")
        .await?;
    wait_for_button(browser, "off").await?;
    browser
        .eval::<bool>("location.hash = 'general'; return true;")
        .await?;
    wait_for_button(browser, "on").await?;

    // Clicked again: no room left, the server forgets it (a refused DELETE would leave it on).
    click(browser, "notify").await?;
    wait_for_button(browser, "off").await?;
    let left: bool = browser
        .eval("return (await navigator.serviceWorker.ready).pushManager.getSubscription().then((s) => s !== null);")
        .await?;
    ensure!(!left, "the browser still holds the subscription");
    Ok(())
}

/// Waits until the "Notify me" button says `state` (`off`, `on`, `blocked`).
async fn wait_for_button(browser: &Browser, state: &str) -> anyhow::Result<()> {
    wait_until(
        &format!("the Notify me button {state}"),
        SETTLE,
        POLL,
        || async {
            let now: Option<String> = browser
                .eval("return document.getElementById('notify').dataset.state ?? null;")
                .await?;
            Ok((now.as_deref() == Some(state)).then_some(()))
        },
    )
    .await
}
