//! Watercooler end to end: posts in one browser reach another by a nudge, in both directions,
//! and the room still opens in that browser once the server is gone.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use nudge_e2e::browser::Viewport;
use nudge_e2e::page::{cached_recent, post_via_form, wait_for_page, Snapshot};
use nudge_e2e::{finish, spawn_app, wait_until, Browser, TestApp};

const ROOM: &str = "general";
const SEEDED: usize = 12;
const SHOWN: usize = 10;
/// The longest a message may take to appear in another session without a reload.
const NUDGE_BUDGET: Duration = Duration::from_secs(5);
/// Page loads, SW installs and debug builds on a busy 2-core machine get more room than that.
const SETTLE: Duration = Duration::from_secs(20);
/// Contains markup on purpose: it must come out as text, not as an element.
const POSTED: &str = "hello from A <b>not bold</b> & <img src=x onerror=alert(1)>";

fn seed_text(i: usize) -> String {
    format!("seed message {i:02}")
}

fn pairs(list: &[(&str, String)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, t)| (a.to_string(), t.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_nudges_another_session_and_the_room_survives_offline() -> anyhow::Result<()> {
    let mut app = spawn_app().await?;
    for i in 1..=SEEDED {
        app.post_message(ROOM, "Seeder", &seed_text(i)).await?;
    }
    let (a, b) = tokio::try_join!(
        Browser::launch("a", Viewport::DESKTOP),
        Browser::launch("b", Viewport::PHONE)
    )?;

    let outcome = nudge_then_offline(&mut app, &a, &b).await;
    finish(&app, [a, b], outcome).await
}

async fn nudge_then_offline(app: &mut TestApp, a: &Browser, b: &Browser) -> anyhow::Result<()> {
    let room_url = app.url(&format!("/#{ROOM}"));
    let seeds: Vec<(&str, String)> = (1..=SEEDED).map(|i| ("Seeder", seed_text(i))).collect();
    let first_ten = pairs(&seeds[SEEDED - SHOWN..]);

    // Both sessions open the room: first paint from the recent resource, then a live stream.
    tokio::try_join!(a.goto(&room_url), b.goto(&room_url))?;
    for browser in [a, b] {
        let shot = wait_for_page(browser, "the room, live", SETTLE, |s| {
            s.state.as_deref() == Some("live") && s.messages.len() == SHOWN
        })
        .await?;
        assert_eq!(
            shot.messages,
            first_ten,
            "{}: the ten most recent seeds, oldest first",
            browser.name()
        );
    }

    // B must be controlled by the SW, and must have read the room under that control, or there
    // is nothing for an offline start to serve.
    ensure_controlled(b).await?;
    b.reload().await?;
    wait_for_page(b, "B reloaded under the ServiceWorker, live", SETTLE, |s| {
        s.controlled && s.state.as_deref() == Some("live") && s.messages.len() == SHOWN
    })
    .await?;
    wait_until(
        "the SW to store the room's recent messages",
        SETTLE,
        nudge_e2e::page::POLL,
        || cached_recent(b, ROOM),
    )
    .await?;
    // Any reload from here on would clear this; the nudge must arrive without one.
    b.eval::<bool>("window.__e2eSamePage = true; return true;")
        .await?;

    // A posts through the form; B shows it within the budget, without a reload.
    post_via_form(a, "Alice", POSTED).await?;
    let posted_at = Instant::now();
    let shot = wait_for_page(b, "A's message on B, by a nudge", NUDGE_BUDGET, |s| {
        s.messages.last().map(|(_, t)| t.as_str()) == Some(POSTED)
    })
    .await?;
    // What was on screen stays there (the reader keeps their place), so the oldest seed shown
    // before stays above the new last ten.
    eprintln!(
        "B showed A's message {:?} after A clicked Send",
        posted_at.elapsed()
    );
    let mut on_screen = first_ten.clone();
    on_screen.push(("Alice".to_string(), POSTED.to_string()));
    assert_eq!(shot.messages, on_screen, "B: what it showed, then A's post");
    // The design's path: B handed the nudge to its SW, which refreshed its copy and said
    // `updated`; B re-rendered from that copy (not from a fetch of its own after a timeout).
    assert_eq!(
        shot.source.as_deref(),
        Some("sw"),
        "B re-rendered from the SW's refreshed copy"
    );
    ensure!(
        b.eval::<bool>("return window.__e2eSamePage === true;")
            .await?,
        "B reloaded instead of being nudged"
    );
    let markup: u32 = b
        .eval("return document.querySelectorAll('#messages b, #messages img').length;")
        .await?;
    ensure!(
        markup == 0,
        "message text was rendered as HTML ({markup} elements)"
    );
    wait_for_page(a, "A's own message on A", NUDGE_BUDGET, |s| {
        s.messages == on_screen && s.pending.is_empty()
    })
    .await?;

    // And the other way: B (a phone) answers, A shows it without a reload.
    a.eval::<bool>("window.__e2eSamePage = true; return true;")
        .await?;
    post_via_form(b, "Bob", "hello back from B").await?;
    let shot = wait_for_page(a, "B's answer on A, by a nudge", NUDGE_BUDGET, |s| {
        s.messages.last().map(|(_, t)| t.as_str()) == Some("hello back from B")
    })
    .await?;
    assert_eq!(
        shot.messages[shot.messages.len() - 2].1,
        POSTED,
        "A: B's answer right after A's post"
    );
    ensure!(
        a.eval::<bool>("return window.__e2eSamePage === true;")
            .await?,
        "A reloaded instead of being nudged"
    );
    let mut expected: Vec<(&str, String)> = seeds[SEEDED - SHOWN + 2..].to_vec();
    expected.push(("Alice", POSTED.to_string()));
    expected.push(("Bob", "hello back from B".to_string()));
    let last_ten = pairs(&expected);
    wait_for_page(b, "B's own answer on B", NUDGE_BUDGET, |s| {
        s.messages.ends_with(&last_ten) && s.pending.is_empty()
    })
    .await?;

    let recent = app.recent(ROOM).await?;
    let stored: Vec<(String, String)> = recent
        .messages
        .iter()
        .map(|m| (m.author.clone(), m.text.clone()))
        .collect();
    assert_eq!(
        stored, last_ten,
        "the server's recent resource after one click on Send on each side"
    );

    // Scrolling back to the top of the log brings the older messages, above the ones shown.
    a.eval::<bool>(
        "const log = document.getElementById('messages').parentElement;
         log.scrollTop = 0; log.dispatchEvent(new Event('scroll')); return true;",
    )
    .await?;
    let shot = wait_for_page(a, "A to load the older messages on scroll", SETTLE, |s| {
        s.messages.len() == SEEDED + 2
    })
    .await?;
    let mut everything = seeds.clone();
    everything.push(("Alice", POSTED.to_string()));
    everything.push(("Bob", "hello back from B".to_string()));
    assert_eq!(
        shot.messages,
        pairs(&everything),
        "A: the whole room, oldest first"
    );

    // The SW's stored copy must already hold the post: it refreshed it for the nudge.
    wait_until(
        "the SW's stored copy to include the last post",
        NUDGE_BUDGET,
        nudge_e2e::page::POLL,
        || async {
            Ok(cached_recent(b, ROOM)
                .await?
                .filter(|body| body.contains("hello back from B")))
        },
    )
    .await?;

    // The server goes away: the open page notices from its stream.
    app.stop()?;
    let shot = wait_for_page(b, "B to notice the server is gone", SETTLE, |s| {
        matches!(s.state.as_deref(), Some("reconnecting" | "offline"))
    })
    .await?;
    eprintln!(
        "B after the server stopped, before reload: {:?}",
        shot.state
    );

    // The browser stops idle workers; do it now so the reload has to start the SW offline.
    b.stop_service_workers().await?;
    b.reload().await?;
    let shot = wait_for_page(b, "B reloaded offline, from the SW's copy", SETTLE, |s| {
        s.state.as_deref() == Some("offline") && s.messages.len() == SHOWN
    })
    .await?;
    assert_eq!(
        shot.messages, last_ten,
        "B offline: the last ten, as stored"
    );
    assert_eq!(
        shot.source.as_deref(),
        Some("offline"),
        "B offline: marked as the stored copy"
    );
    ensure!(shot.controlled, "B offline is not controlled by the SW");
    Ok(())
}

/// Waits for a controlling ServiceWorker; a page loaded before the SW activated may stay
/// uncontrolled (if the SW does not claim clients), so reload once before giving up.
async fn ensure_controlled(b: &Browser) -> anyhow::Result<()> {
    let controlled = |s: &Snapshot| s.controlled;
    if wait_for_page(b, "a controlling ServiceWorker", SETTLE / 2, controlled)
        .await
        .is_ok()
    {
        return Ok(());
    }
    // Why not, for the failure message: is the worker script served, and did it activate?
    let before: String = b
        .eval(
            "const sw = await fetch('/sw.js', { cache: 'no-store' });
             const reg = await navigator.serviceWorker.getRegistration('/');
             return `GET /sw.js -> ${sw.status}; registration: ${reg ? (reg.active ? 'active' : reg.installing ? 'installing' : reg.waiting ? 'waiting' : 'none active') : 'none'}`;",
        )
        .await?;
    b.reload().await?;
    wait_for_page(
        b,
        "a controlling ServiceWorker after one reload",
        SETTLE,
        controlled,
    )
    .await
    .with_context(|| format!("before the reload: {before}"))?;
    Ok(())
}
