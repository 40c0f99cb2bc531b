//! The Watercooler page's own promises, in one browser: a post is stored once however eagerly
//! the form is submitted, presence shows but is never cached, the display name survives a
//! reload, and the layout holds at 360 px.

use std::time::Duration;

use anyhow::ensure;
use nudge_e2e::browser::Viewport;
use nudge_e2e::page::{cached_recent, cached_urls, post_via_form, wait_for_page, POLL};
use nudge_e2e::{finish, spawn_app, wait_until, Browser, TestApp};

const SETTLE: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_form_posts_once_and_remembers_the_name() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let browser = Browser::launch("page", Viewport::PHONE).await?;
    let outcome = form_checks(&app, &browser).await;
    finish(&app, [browser], outcome).await
}

async fn form_checks(app: &TestApp, browser: &Browser) -> anyhow::Result<()> {
    browser.goto(&app.url("/#general")).await?;
    wait_for_page(browser, "the empty room, live", SETTLE, |s| {
        s.state.as_deref() == Some("live")
    })
    .await?;

    // Two submits in the same task: the second finds the first still in flight.
    post_via_form(browser, "Bea", "first").await?;
    wait_for_page(browser, "the first post, sent", SETTLE, |s| {
        s.messages.len() == 1 && s.pending.is_empty()
    })
    .await?;
    browser
        .eval::<bool>(
            "const f = document.getElementById('compose');
             document.getElementById('text').value = 'only once';
             f.requestSubmit(); f.requestSubmit(); f.requestSubmit();
             return true;",
        )
        .await?;
    // The page shows a post at once, as pending, and as sent once the server took it.
    let shot = wait_for_page(browser, "the second post, sent", SETTLE, |s| {
        s.messages.len() == 2 && s.pending.is_empty()
    })
    .await?;
    let texts: Vec<&str> = shot.messages.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(texts, ["first", "only once"]);
    let stored = app.recent("general").await?;
    let stored: Vec<&str> = stored.messages.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(
        stored,
        ["first", "only once"],
        "three submits in a row stored one message"
    );

    let cleared: String = browser
        .eval("return document.getElementById('text').value;")
        .await?;
    ensure!(
        cleared.is_empty(),
        "the message box keeps {cleared:?} after a successful post"
    );

    // No horizontal scrolling on the narrowest supported phone.
    let overflow: i64 = browser
        .eval("return document.documentElement.scrollWidth - document.documentElement.clientWidth;")
        .await?;
    ensure!(
        overflow <= 0,
        "the page is {overflow} px wider than a 360 px screen"
    );

    // Presence is ephemeral: shown, but never in Cache Storage.
    wait_until("presence to show Bea", SETTLE, POLL, || async {
        let here: String = browser
            .eval("return document.getElementById('presence').textContent;")
            .await?;
        Ok(here.contains("Bea").then_some(()))
    })
    .await?;
    // The SW does cache reads (the room's, refreshed by the nudges of the posts above)...
    wait_until("the SW to store the room", SETTLE, POLL, || {
        cached_recent(browser, "general")
    })
    .await?;
    // ...but not presence, which the page has read and the server has nudged by now.
    let cached = cached_urls(browser).await?;
    let presence: Vec<_> = cached
        .iter()
        .filter(|(_, url)| url.contains("/presence"))
        .collect();
    ensure!(
        presence.is_empty(),
        "presence in Cache Storage: {presence:?}"
    );

    browser.reload().await?;
    wait_for_page(browser, "the room after a reload", SETTLE, |s| {
        s.messages.len() == 2
    })
    .await?;
    let name: String = browser
        .eval("return document.getElementById('author').value;")
        .await?;
    assert_eq!(name, "Bea", "the display name comes back from localStorage");
    let mine: u32 = browser
        .eval("return document.querySelectorAll('#messages li.message.mine').length;")
        .await?;
    assert_eq!(mine, 2, "own messages are marked as such");
    Ok(())
}
