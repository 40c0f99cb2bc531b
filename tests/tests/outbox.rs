//! The ServiceWorker's outbox with the real server: writes made offline go up exactly once and
//! in order, even with no tab open (Background Sync, dispatched through DevTools), a refused
//! replay is removed and reported, tabs and the SW trying at once make no duplicate, and an
//! entry never goes up under another account than the one that wrote it.

use std::time::Duration;

use anyhow::{bail, ensure, Context};
use nudge_e2e::browser::Viewport;
use nudge_e2e::page::{
    account, click, open_controlled, outbox_texts, post_via_form, sign_in_via_form, wait_for_page,
    Account, POLL,
};
use nudge_e2e::{finish, spawn_app, wait_until, Browser, TestApp};
use serde_json::json;

/// Page loads, SW installs, argon2 in a debug build, a server restart and the stream's retry.
const SETTLE: Duration = Duration::from_secs(20);
const ROOM: &str = "general";
const PASSWORD: &str = "correct horse battery";
/// The Background Sync tag the SW registers when it queues (sw/src/outbox.rs).
const SYNC_TAG: &str = "nudge-outbox";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_queued_offline_go_up_once_in_order_with_no_tab_open() -> anyhow::Result<()> {
    let mut app = spawn_app().await?;
    let browser = Browser::launch("outbox-sync", Viewport::DESKTOP).await?;
    let outcome = no_tab_open(&mut app, &browser).await;
    finish(&app, [browser], outcome).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_replay_is_removed_and_reported() -> anyhow::Result<()> {
    let mut app = spawn_app().await?;
    let browser = Browser::launch("outbox-refused", Viewport::DESKTOP).await?;
    let outcome = refused(&mut app, &browser).await;
    finish(&app, [browser], outcome).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tabs_and_the_sw_at_once_make_no_duplicate() -> anyhow::Result<()> {
    let mut app = spawn_app().await?;
    let browser = Browser::launch("outbox-tabs", Viewport::DESKTOP).await?;
    let outcome = all_at_once(&mut app, &browser).await;
    finish(&app, [browser], outcome).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_account_never_sends_the_first_ones_entries() -> anyhow::Result<()> {
    let mut app = spawn_app().await?;
    let browser = Browser::launch("outbox-accounts", Viewport::DESKTOP).await?;
    let outcome = accounts(&mut app, &browser).await;
    finish(&app, [browser], outcome).await
}

async fn open_room(app: &TestApp, browser: &Browser) -> anyhow::Result<()> {
    open_controlled(browser, &app.url(&format!("/#{ROOM}")), SETTLE).await
}

/// Stops the server and waits until the page has noticed.
async fn go_offline(app: &mut TestApp, browser: &Browser) -> anyhow::Result<()> {
    app.stop()?;
    wait_for_page(
        browser,
        "the page to notice the server is gone",
        SETTLE,
        |s| matches!(s.state.as_deref(), Some("reconnecting" | "offline")),
    )
    .await?;
    Ok(())
}

/// The texts stored in the room, oldest first.
async fn stored(app: &TestApp) -> anyhow::Result<Vec<String>> {
    let recent = app.recent(ROOM).await.context("reading the room")?;
    Ok(recent.messages.into_iter().map(|m| m.text).collect())
}

/// Waits until the server holds every one of `texts`, then checks each is there exactly once
/// and in this order.
async fn wait_stored_once_in_order(app: &TestApp, texts: &[&str]) -> anyhow::Result<()> {
    let all = wait_until("the server to hold every message", SETTLE, POLL, || async {
        let all = stored(app).await?;
        Ok(texts
            .iter()
            .all(|t| all.iter().any(|s| s == t))
            .then_some(all))
    })
    .await?;
    for text in texts {
        let times = all.iter().filter(|t| t == text).count();
        ensure!(times == 1, "{text:?} stored {times} times: {all:?}");
    }
    let order: Vec<&str> = all
        .iter()
        .map(String::as_str)
        .filter(|t| texts.contains(t))
        .collect();
    ensure!(order == texts, "stored out of order: {all:?}");
    Ok(())
}

/// Posts a message with `fetch` from the page, as any app would; the status the page got and
/// the SW's `Nudge-Outbox-Entry` header, if it queued the write.
async fn post_from_page(
    browser: &Browser,
    author: &str,
    text: &str,
) -> anyhow::Result<(u16, Option<String>)> {
    let body = json!({ "author": author, "text": text }).to_string();
    browser
        .eval(&format!(
            "const res = await fetch('/api/rooms/{ROOM}/messages', {{
                method: 'POST', headers: {{'Content-Type': 'application/json'}}, body: {body:?} }});
             return [res.status, res.headers.get('Nudge-Outbox-Entry')];"
        ))
        .await
}

/// Dispatches Background Sync's `sync` event for the outbox's tag to the origin's SW through
/// DevTools, as the browser does when the network comes back. The registration id is not
/// exposed to pages: a fresh profile numbers its registrations from 0.
async fn dispatch_sync(app: &TestApp, browser: &Browser) -> anyhow::Result<()> {
    browser.cdp("ServiceWorker.enable", json!({})).await?;
    let origin = app.base_url().trim_end_matches('/').to_owned();
    let mut last = None;
    for id in 0..4 {
        let params = json!({
            "origin": origin, "registrationId": id.to_string(), "tag": SYNC_TAG, "lastChance": false,
        });
        match browser.cdp("ServiceWorker.dispatchSyncEvent", params).await {
            Ok(_) => return Ok(()),
            Err(error) => last = Some(error),
        }
    }
    bail!("no registration took the sync event: {last:?}")
}

async fn no_tab_open(app: &mut TestApp, browser: &Browser) -> anyhow::Result<()> {
    const TYPED: [&str; 3] = ["first, offline", "second, offline", "third, offline"];
    open_room(app, browser).await?;
    // The shell's route is network-first: its navigations are preloaded while the SW starts.
    let preload: bool = browser
        .eval(
            "const reg = await navigator.serviceWorker.ready;
             return !!reg.navigationPreload && (await reg.navigationPreload.getState()).enabled;",
        )
        .await?;
    ensure!(preload, "navigation preload is on");
    go_offline(app, browser).await?;
    for text in TYPED {
        post_via_form(browser, "Ada", text).await?;
    }
    wait_for_page(browser, "three messages pending", SETTLE, |s| {
        s.pending == TYPED
    })
    .await?;
    // In the SW's outbox, not the page's: the page has nothing to send them with once closed.
    let queued = wait_until("the SW to hold the three", SETTLE, POLL, || async {
        let texts = outbox_texts(browser).await?;
        Ok((texts == TYPED).then_some(texts))
    })
    .await?;
    ensure!(queued == TYPED);

    // Every tab of the app gone, and the SW stopped as the browser stops idle ones: nothing
    // left of the app but what the SW stored.
    browser.goto("about:blank").await?;
    browser.stop_service_workers().await?;
    app.restart().await?;
    ensure!(
        stored(app)
            .await?
            .iter()
            .all(|t| !TYPED.contains(&t.as_str())),
        "nothing goes up before the sync"
    );
    dispatch_sync(app, browser).await?;
    wait_stored_once_in_order(app, &TYPED).await
}

async fn refused(app: &mut TestApp, browser: &Browser) -> anyhow::Result<()> {
    open_room(app, browser).await?;
    go_offline(app, browser).await?;
    // The server refuses an empty text for good (400): it must not block what follows.
    let (status, entry) = post_from_page(browser, "Ada", " ").await?;
    ensure!(
        status == 202 && entry.is_some(),
        "queued: {status} {entry:?}"
    );
    post_via_form(browser, "Ada", "after the refused one").await?;
    wait_until("both queued in the SW", SETTLE, POLL, || async {
        Ok((outbox_texts(browser).await?.len() == 2).then_some(()))
    })
    .await?;

    app.restart().await?;
    // The page reports it (the SW told every page which entry failed and why).
    let said = wait_until(
        "the page to report the refused message",
        SETTLE,
        POLL,
        || async {
            let text: String = browser
                .eval("return document.getElementById('compose-error')?.textContent ?? '';")
                .await?;
            Ok(text.contains("was not sent").then_some(text))
        },
    )
    .await?;
    ensure!(said.contains("must not be empty"), "{said:?}");
    wait_stored_once_in_order(app, &["after the refused one"]).await?;
    wait_until("the outbox to be empty", SETTLE, POLL, || async {
        Ok(outbox_texts(browser).await?.is_empty().then_some(()))
    })
    .await?;
    Ok(())
}

async fn all_at_once(app: &mut TestApp, browser: &Browser) -> anyhow::Result<()> {
    const TYPED: [&str; 3] = ["one, tab A", "two, tab B", "three, tab A"];
    open_room(app, browser).await?;
    let a = browser.current_tab().await?;
    let b = browser.open_tab(&app.url(&format!("/#{ROOM}"))).await?;
    wait_for_page(browser, "tab B, controlled", SETTLE, |s| s.controlled).await?;
    go_offline(app, browser).await?;
    browser.switch_to(&a).await?;
    post_via_form(browser, "Ada", TYPED[0]).await?;
    browser.switch_to(&b).await?;
    post_via_form(browser, "Bea", TYPED[1]).await?;
    browser.switch_to(&a).await?;
    post_via_form(browser, "Ada", TYPED[2]).await?;
    wait_until("three queued in the SW", SETTLE, POLL, || async {
        Ok((outbox_texts(browser).await? == TYPED).then_some(()))
    })
    .await?;

    app.restart().await?;
    // Both tabs say the network is back, and the browser's sync fires, all at once (the
    // stream's own reconnection in each tab adds its flush too).
    let flush = "navigator.serviceWorker.controller.postMessage({type: 'outbox', op: 'flush', principal: null}); return true;";
    browser.switch_to(&b).await?;
    browser.eval::<bool>(flush).await?;
    browser.switch_to(&a).await?;
    browser.eval::<bool>(flush).await?;
    dispatch_sync(app, browser).await?;
    wait_stored_once_in_order(app, &TYPED).await?;
    // And nothing more arrives later from a retry that was still under way.
    for browser_tab in [&a, &b] {
        browser.switch_to(browser_tab).await?;
        wait_for_page(browser, "no message pending", SETTLE, |s| {
            s.pending.is_empty()
        })
        .await?;
    }
    wait_stored_once_in_order(app, &TYPED).await
}

fn signed_in(name: &str) -> Account {
    Account {
        state: "signed-in".into(),
        name: name.into(),
    }
}

async fn wait_for_account(browser: &Browser, want: Account) -> anyhow::Result<()> {
    wait_until(
        &format!("the account area to show {want:?}"),
        SETTLE,
        POLL,
        || async {
            let now = account(browser).await?;
            Ok((now == want).then_some(()))
        },
    )
    .await
}

async fn accounts(app: &mut TestApp, browser: &Browser) -> anyhow::Result<()> {
    const BOS: &str = "Bo's, written offline";
    const CYS: &str = "Cy's, written online";
    open_room(app, browser).await?;
    sign_in_via_form(browser, "Bo", PASSWORD, true).await?;
    wait_for_account(browser, signed_in("Bo")).await?;
    go_offline(app, browser).await?;
    post_via_form(browser, "Bo", BOS).await?;
    wait_until("Bo's message in the SW's outbox", SETTLE, POLL, || async {
        Ok((outbox_texts(browser).await? == [BOS]).then_some(()))
    })
    .await?;

    // Bo signs out with the message waiting (the page asks first; sign-out needs the server).
    click(browser, "signout").await?;
    wait_until("the sign-out dialog", SETTLE, POLL, || async {
        let open: bool = browser
            .eval("return document.getElementById('signout-dialog').open;")
            .await?;
        Ok(open.then_some(()))
    })
    .await?;
    app.restart().await?;
    click(browser, "signout-confirm").await?;
    wait_for_account(
        browser,
        Account {
            state: "signed-out".into(),
            name: String::new(),
        },
    )
    .await?;

    // Cy signs in on the same browser and writes offline too: Cy's entry queues behind Bo's.
    sign_in_via_form(browser, "Cy", PASSWORD, true).await?;
    wait_for_account(browser, signed_in("Cy")).await?;
    go_offline(app, browser).await?;
    post_via_form(browser, "Cy", CYS).await?;
    wait_until("Cy's message behind Bo's", SETTLE, POLL, || async {
        Ok((outbox_texts(browser).await? == [BOS, CYS]).then_some(()))
    })
    .await?;
    // Every trigger of a replay fires. A pass goes through the entries oldest first, so the
    // pass that sent Cy's had Bo's before it: it was held, not merely not reached yet.
    app.restart().await?;
    dispatch_sync(app, browser).await?;
    wait_stored_once_in_order(app, &[CYS]).await?;
    let all = stored(app).await?;
    ensure!(
        !all.iter().any(|t| t == BOS),
        "Bo's message went up under Cy: {all:?}"
    );
    assert_eq!(
        outbox_texts(browser).await?,
        [BOS],
        "Bo's message still waits"
    );

    // Bo signs in again: Bo's message goes up, under Bo.
    click(browser, "signout").await?;
    wait_for_account(
        browser,
        Account {
            state: "signed-out".into(),
            name: String::new(),
        },
    )
    .await?;
    sign_in_via_form(browser, "Bo", PASSWORD, false).await?;
    wait_for_account(browser, signed_in("Bo")).await?;
    wait_stored_once_in_order(app, &[CYS, BOS]).await?;
    let recent = app.recent(ROOM).await?;
    let bos = recent
        .messages
        .iter()
        .find(|m| m.text == BOS)
        .context("Bo's")?;
    ensure!(bos.author == "Bo", "Bo's message under {:?}", bos.author);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_after_a_lost_answer_stores_nothing_new() -> anyhow::Result<()> {
    let mut app = spawn_app().await?;
    let browser = Browser::launch("outbox-lost-answer", Viewport::DESKTOP).await?;
    let outcome = lost_answer(&mut app, &browser).await;
    finish(&app, [browser], outcome).await
}

/// A proxy in front of the server that, while armed, lets each message POST through and the
/// server answer it, then cuts the connection before the answer reaches the browser: the write
/// is committed, and the browser cannot know. (Every attempt is cut: Chromium itself sends a
/// request again once when a kept-alive connection fails before its answer.)
struct CuttingProxy {
    base: String,
    armed: std::sync::Arc<std::sync::atomic::AtomicBool>,
    cut: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl CuttingProxy {
    async fn start(upstream: &str) -> anyhow::Result<Self> {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        use std::sync::Arc;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let (armed, cut) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicUsize::new(0)),
        );
        let (armed_for, cut_for) = (armed.clone(), cut.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                    continue;
                };
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                let this_one = Arc::new(AtomicBool::new(false));
                let (armed, this, cut) = (armed_for.clone(), this_one.clone(), cut_for.clone());
                tokio::spawn(async move {
                    let mut buf = vec![0; 16 * 1024];
                    while let Ok(n) = client_read.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        let posting = buf[..n]
                            .windows(POST_LINE.len())
                            .any(|w| w == POST_LINE.as_bytes());
                        if posting && armed.load(Ordering::Acquire) {
                            this.store(true, Ordering::Release);
                        }
                        if server_write.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
                tokio::spawn(async move {
                    let mut buf = vec![0; 16 * 1024];
                    while let Ok(n) = server_read.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        if this_one.load(Ordering::Acquire) {
                            // The server answered, so it committed: drop the answer and the
                            // connection, as a network that fails at the worst moment would.
                            cut.fetch_add(1, Ordering::AcqRel);
                            return;
                        }
                        if client_write.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        Ok(Self { base, armed, cut })
    }
}

/// The request line the proxy cuts the answer of.
const POST_LINE: &str = "POST /api/rooms/general/messages";

async fn lost_answer(app: &mut TestApp, browser: &Browser) -> anyhow::Result<()> {
    use std::sync::atomic::Ordering;
    const TEXT: &str = "once, though its answer was lost";
    let proxy = CuttingProxy::start(app.base_url()).await?;
    open_controlled(browser, &format!("{}/#{ROOM}", proxy.base), SETTLE).await?;
    proxy.armed.store(true, Ordering::Release);
    let (status, entry) = post_from_page(browser, "Ada", TEXT).await?;
    proxy.armed.store(false, Ordering::Release);
    ensure!(proxy.cut.load(Ordering::Acquire) >= 1, "the answer was cut");
    ensure!(
        status == 202 && entry.is_some(),
        "with no answer the SW queued it: {status} {entry:?}"
    );
    ensure!(
        stored(app).await?.iter().filter(|t| *t == TEXT).count() == 1,
        "the server committed it before the answer was lost"
    );
    // The replay carries the same key: the server answers the first answer and stores nothing.
    let nudge = browser
        .eval::<bool>("navigator.serviceWorker.controller.postMessage({type: 'outbox', op: 'flush'}); return true;")
        .await?;
    ensure!(nudge);
    wait_until("the SW's outbox to empty", SETTLE, POLL, || async {
        Ok(outbox_texts(browser).await?.is_empty().then_some(()))
    })
    .await?;
    wait_stored_once_in_order(app, &[TEXT]).await
}
