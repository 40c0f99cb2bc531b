//! One browser, three tabs: one tab leads and holds the browser's only event stream, a nudge
//! costs the server one GET however many tabs show the room, and when the leader tab closes
//! another takes over and resumes where it stopped.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use nudge_e2e::browser::Viewport;
use nudge_e2e::page::{cached_recent, snapshot, wait_for_page, Snapshot, POLL};
use nudge_e2e::{finish, spawn_app, wait_until, Browser, TestApp};
use thirtyfour::WindowHandle;

const ROOM: &str = "general";
const SEEDED: usize = 3;
/// The longest a message may take to appear without a reload, and a handover to finish.
const BUDGET: Duration = Duration::from_secs(5);
/// Page loads, SW installs and debug builds on a busy 2-core machine get more room than that.
const SETTLE: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_tabs_share_one_stream_and_one_refresh() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    for i in 1..=SEEDED {
        app.post_message(ROOM, "Seeder", &format!("seed {i}"))
            .await?;
    }
    let browser = Browser::launch("tabs", Viewport::DESKTOP).await?;
    let outcome = three_tabs(&app, &browser).await;
    finish(&app, [browser], outcome).await
}

async fn three_tabs(app: &TestApp, browser: &Browser) -> anyhow::Result<()> {
    let url = app.url(&format!("/#{ROOM}"));
    browser.goto(&url).await?;
    // The first tab installs the SW, which claims it; the other tabs open under its control.
    wait_for_page(browser, "the first tab, live and controlled", SETTLE, |s| {
        s.state.as_deref() == Some("live") && s.controlled && s.messages.len() == SEEDED
    })
    .await?;
    let mut tabs = vec![browser.current_tab().await?];
    for _ in 0..2 {
        tabs.push(browser.open_tab(&url).await?);
        wait_for_page(browser, "a new tab, live and controlled", SETTLE, |s| {
            s.state.as_deref() == Some("live") && s.controlled && s.messages.len() == SEEDED
        })
        .await?;
    }

    // One stream for the whole browser, held by one leader.
    wait_for_streams(app, 1, "one event stream for three tabs").await?;
    let leader = leader_of(browser, &tabs).await?;
    eprintln!("tab {leader} leads");

    // One nudge: the leader hands it to the SW, which makes the one GET and tells every tab.
    let before = app.recent_gets().await?;
    app.post_message(ROOM, "Outsider", "one nudge").await?;
    for tab in &tabs {
        browser.switch_to(tab).await?;
        let shot = wait_for_page(browser, "the nudged message in every tab", BUDGET, |s| {
            s.messages.last().map(|(_, t)| t.as_str()) == Some("one nudge")
        })
        .await?;
        assert_eq!(
            shot.source.as_deref(),
            Some("sw"),
            "each tab re-renders from the SW's refreshed copy"
        );
    }
    let after = app.recent_gets().await?;
    assert_eq!(
        after - before,
        1.0,
        "three tabs and one nudge: GETs of the recent URL at the server"
    );
    // A follower fetched nothing itself (the count above), yet its view of the cache is new.
    let follower = (leader + 1) % tabs.len();
    browser.switch_to(&tabs[follower]).await?;
    let cached = cached_recent(browser, ROOM)
        .await?
        .context("the recent resource in the follower's Cache Storage")?;
    ensure!(
        cached.contains("one nudge"),
        "the follower's cache holds the nudged version: {cached}"
    );

    // The leader goes; a message posted during the handover must still arrive everywhere.
    let rest: Vec<WindowHandle> = tabs
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != leader)
        .map(|(_, t)| t.clone())
        .collect();
    browser.close_tab(&tabs[leader], &rest[0]).await?;
    let closed_at = Instant::now();
    app.post_message(ROOM, "Outsider", "during the handover")
        .await?;
    let new_leader = wait_until("another tab to take the lead", BUDGET, POLL, || async {
        for (i, tab) in rest.iter().enumerate() {
            browser.switch_to(tab).await?;
            if snapshot(browser).await?.tab.as_deref() == Some("leader") {
                return Ok(Some(i));
            }
        }
        Ok(None)
    })
    .await?;
    eprintln!("a new leader after {:?}", closed_at.elapsed());
    for tab in &rest {
        browser.switch_to(tab).await?;
        wait_for_page(browser, "the handover's message", BUDGET, |s| {
            s.messages.last().map(|(_, t)| t.as_str()) == Some("during the handover")
        })
        .await?;
    }
    eprintln!(
        "both remaining tabs show the handover's message {:?} after the close",
        closed_at.elapsed()
    );

    // And messages keep coming, still over one stream.
    app.post_message(ROOM, "Outsider", "after the handover")
        .await?;
    for tab in &rest {
        browser.switch_to(tab).await?;
        let shot = wait_for_page(browser, "a message after the handover", BUDGET, |s| {
            s.messages.last().map(|(_, t)| t.as_str()) == Some("after the handover")
        })
        .await?;
        let texts: Vec<&str> = shot.messages.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(
            texts,
            [
                "seed 1",
                "seed 2",
                "seed 3",
                "one nudge",
                "during the handover",
                "after the handover"
            ],
            "nothing missed, nothing twice"
        );
    }
    browser.switch_to(&rest[new_leader]).await?;
    wait_for_streams(app, 1, "one event stream after the handover").await?;
    Ok(())
}

/// Waits until the server counts exactly `n` open event streams.
async fn wait_for_streams(app: &TestApp, n: u32, what: &str) -> anyhow::Result<()> {
    let mut last = None;
    let found = wait_until(what, SETTLE, POLL, || async {
        let open = app.streams_open().await?;
        Ok((open == Some(f64::from(n))).then_some(()))
    })
    .await;
    if found.is_err() {
        last = app.streams_open().await.ok().flatten();
    }
    found.with_context(|| format!("the server counts {last:?} open streams"))
}

/// The index of the one tab that says it leads; fails unless exactly one does.
async fn leader_of(browser: &Browser, tabs: &[WindowHandle]) -> anyhow::Result<usize> {
    let mut shots: Vec<Snapshot> = Vec::new();
    for tab in tabs {
        browser.switch_to(tab).await?;
        shots.push(snapshot(browser).await?);
    }
    let leaders: Vec<usize> = (0..tabs.len())
        .filter(|&i| shots[i].tab.as_deref() == Some("leader"))
        .collect();
    ensure!(
        leaders.len() == 1,
        "exactly one tab leads: {:?}",
        shots.iter().map(|s| s.tab.clone()).collect::<Vec<_>>()
    );
    Ok(leaders[0])
}
