//! Offline compose: messages typed while the server is gone show at once as pending, survive a
//! reload, and go up when it is back, once each and in the order typed, for everyone. Also
//! writes the screenshots of the room view (desktop and 360 px, online and offline) to
//! `artifacts/`.

use std::time::{Duration, Instant};

use anyhow::ensure;
use nudge_e2e::browser::Viewport;
use nudge_e2e::page::{cached_recent, post_via_form, wait_for_page, Snapshot, POLL};
use nudge_e2e::{finish, spawn_app, wait_until, Browser, TestApp};

const ROOM: &str = "general";
const SEEDED: usize = 12;
const SHOWN: usize = 10;
/// Page loads, SW installs, a server restart and the stream's retry (1–5 s) on a busy machine.
const SETTLE: Duration = Duration::from_secs(20);
const TYPED: [&str; 2] = ["typed offline, first", "typed offline, second"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_typed_offline_go_up_once_in_order() -> anyhow::Result<()> {
    let mut app = spawn_app().await?;
    for i in 1..=SEEDED {
        app.post_message(ROOM, "Seeder", &format!("seed {i:02}"))
            .await?;
    }
    let (a, b) = tokio::try_join!(
        Browser::launch("offline-desktop", Viewport::DESKTOP),
        Browser::launch("offline-phone", Viewport::PHONE)
    )?;
    let outcome = offline_compose(&mut app, &a, &b).await;
    finish(&app, [a, b], outcome).await
}

async fn offline_compose(app: &mut TestApp, a: &Browser, b: &Browser) -> anyhow::Result<()> {
    let url = app.url(&format!("/#{ROOM}"));
    tokio::try_join!(a.goto(&url), b.goto(&url))?;
    for browser in [a, b] {
        wait_for_page(browser, "the room, live and controlled", SETTLE, |s| {
            s.state.as_deref() == Some("live") && s.controlled && s.messages.len() == SHOWN
        })
        .await?;
        // The first visit's read went out before the SW took over: read once more under it,
        // so there is a stored copy for the offline reload below.
        browser.reload().await?;
        wait_for_page(browser, "the room, read under the SW", SETTLE, |s| {
            s.state.as_deref() == Some("live") && s.controlled && s.messages.len() == SHOWN
        })
        .await?;
        wait_until("the SW to store the room", SETTLE, POLL, || {
            cached_recent(browser, ROOM)
        })
        .await?;
    }
    a.screenshot("room-desktop-online.png").await?;
    b.screenshot("room-phone-online.png").await?;

    app.stop()?;
    wait_for_page(a, "A to notice the server is gone", SETTLE, |s| {
        matches!(s.state.as_deref(), Some("reconnecting" | "offline"))
    })
    .await?;
    for text in TYPED {
        post_via_form(a, "Ada", text).await?;
    }
    let pending_both = |s: &Snapshot| s.pending == TYPED;
    wait_for_page(a, "both messages shown as pending", SETTLE, pending_both).await?;

    // A reload with the server gone: the shell and the room come from the SW, the two pending
    // messages from the outbox in IndexedDB.
    a.stop_service_workers().await?;
    a.reload().await?;
    let shot = wait_for_page(a, "A reloaded offline, still pending", SETTLE, |s| {
        s.state.as_deref() == Some("offline") && s.confirmed().len() == SHOWN && pending_both(s)
    })
    .await?;
    assert_eq!(shot.source.as_deref(), Some("offline"));
    a.screenshot("room-desktop-offline.png").await?;
    b.reload().await?;
    wait_for_page(b, "B reloaded offline", SETTLE, |s| {
        s.state.as_deref() == Some("offline") && s.messages.len() == SHOWN
    })
    .await?;
    b.screenshot("room-phone-offline.png").await?;

    // The server comes back on the same port with the same data: the outbox goes up.
    app.restart().await?;
    let back = Instant::now();
    let sent = |s: &Snapshot| {
        s.state.as_deref() == Some("live")
            && s.pending.is_empty()
            && s.messages.len() >= 2
            && s.messages[s.messages.len() - 2..]
                .iter()
                .map(|(_, t)| t.as_str())
                .eq(TYPED)
    };
    wait_for_page(a, "A's outbox sent, in order", SETTLE, sent).await?;
    eprintln!("A's outbox went up {:?} after the restart", back.elapsed());
    wait_for_page(b, "A's offline messages on B, in order", SETTLE, sent).await?;
    eprintln!("B showed them {:?} after the restart", back.elapsed());

    let stored = app.recent(ROOM).await?;
    let texts: Vec<&str> = stored.messages.iter().map(|m| m.text.as_str()).collect();
    for text in TYPED {
        let times = texts.iter().filter(|t| **t == text).count();
        ensure!(times == 1, "{text:?} stored {times} times: {texts:?}");
    }
    assert_eq!(texts[texts.len() - 2..], TYPED, "stored in the order typed");
    Ok(())
}
