//! What a crafted link, a crafted registration URL or a ServiceWorker that never answers cannot
//! do to the page: a malformed hash still opens the app, the loader imports a route table only
//! from its own origin, and sign-out never says "signed out" while private answers are kept.

use std::time::Duration;

use anyhow::{ensure, Context};
use nudge_e2e::browser::Viewport;
use nudge_e2e::page::{
    account, click, open_controlled, sign_in_via_form, wait_for_page, Account, POLL,
};
use nudge_e2e::{finish, spawn_app, spawn_app_with, wait_until, AppOptions, Browser, TestApp};
use serde::Deserialize;

/// Page loads, SW installs, argon2 in a debug build.
const SETTLE: Duration = Duration::from_secs(20);
const PRIVATE_CACHE: &str = "nudge-private-v1";
/// A private answer that the signed-in session left in the SW's private cache.
const SESSION_ENTRY: &str = "/api/rooms/secret/recent";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_with_a_malformed_escape_opens_general() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let browser = Browser::launch("hash-malformed", Viewport::DESKTOP).await?;
    let outcome = malformed_hash(&app, &browser).await;
    finish(&app, [browser], outcome).await
}

async fn malformed_hash(app: &TestApp, browser: &Browser) -> anyhow::Result<()> {
    // `%` alone is no escape: decodeURIComponent throws on it.
    browser.goto(&app.url("/#%")).await?;
    wait_for_page(browser, "the app, live, from a link to /#%", SETTLE, |s| {
        s.state.as_deref() == Some("live")
    })
    .await?;
    let room: String = browser
        .eval("return document.getElementById('room-name').textContent;")
        .await?;
    assert_eq!(room, "#general", "a hash that names no room opens #general");

    // The same through a hashchange on a page that is already running.
    browser
        .eval::<bool>("location.hash = '%E0%A4%A'; return true;")
        .await?;
    browser
        .eval::<bool>("location.hash = 'general'; return true;")
        .await?;
    let errors: Vec<String> = browser
        .console()
        .await?
        .into_iter()
        .map(|e| e.message)
        .filter(|m| m.contains("URIError"))
        .collect();
    ensure!(errors.is_empty(), "the page threw: {errors:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loader_imports_route_tables_from_its_own_origin_only() -> anyhow::Result<()> {
    let app = spawn_app_with(AppOptions {
        copy_www: true,
        ..AppOptions::default()
    })
    .await?;
    // A route table that makes any SW importing it fail to start: whether a registration
    // succeeds tells whether the loader imported it.
    std::fs::write(
        app.www_dir().join("probe.js"),
        "throw new Error('probe.js was imported');\n",
    )?;
    let browser = Browser::launch("routes-guard", Viewport::DESKTOP).await?;
    let outcome = routes_guard(&app, &browser).await;
    finish(&app, [browser], outcome).await
}

async fn routes_guard(app: &TestApp, browser: &Browser) -> anyhow::Result<()> {
    browser.goto(&app.url("/#general")).await?;
    let port = app
        .base_url()
        .rsplit(':')
        .next()
        .context("the app's port")?;
    // `localhost` is another origin than the page's `127.0.0.1`, served by the same server.
    let other = format!("localhost:{port}");
    let outcomes: Vec<(String, String)> = browser
        .eval(&format!(
            r#"
            const tries = [
                ['same-origin', '/probe.js'],
                ['backslash', '/\\{other}/probe.js'],
                ['two-slashes', '//{other}/probe.js'],
                ['backslash-slash', '/\\/{other}/probe.js'],
                ['absolute', 'http://{other}/probe.js'],
            ];
            const out = [];
            for (const [name, routes] of tries) {{
                const url = '/sw.js?routes=' + encodeURIComponent(routes);
                try {{
                    const reg = await navigator.serviceWorker.register(url, {{ scope: '/guard-' + name + '/' }});
                    await reg.unregister();
                    out.push([name, 'registered']);
                }} catch (err) {{
                    out.push([name, 'failed: ' + err.message]);
                }}
            }}
            return out;
            "#
        ))
        .await?;
    let verdict = |name: &str| {
        outcomes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    // The probe does stop a SW that imports it.
    ensure!(
        verdict("same-origin").starts_with("failed"),
        "a same-origin table is imported: {outcomes:?}"
    );
    // Every spelling of another origin is refused before importScripts (the SW then starts,
    // intercepting nothing).
    for name in ["backslash", "two-slashes", "backslash-slash", "absolute"] {
        ensure!(
            verdict(name) == "registered",
            "?routes= {name} reached importScripts: {outcomes:?}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_out_never_reports_done_while_private_answers_are_kept() -> anyhow::Result<()> {
    let app = spawn_app_with(AppOptions {
        copy_www: true,
        ..AppOptions::default()
    })
    .await?;
    // A SW that takes `sign-out` and never answers it, as a stuck one would: its first
    // listener swallows the message before the loader's sees it.
    let sw = app.www_dir().join("sw.js");
    let loader = std::fs::read_to_string(&sw)?;
    std::fs::write(
        &sw,
        format!(
            "self.addEventListener('message', (event) => {{\n  \
               if (event.data && event.data.type === 'sign-out') event.stopImmediatePropagation();\n\
             }});\n{loader}"
        ),
    )?;
    let browser = Browser::launch("signout-stuck-sw", Viewport::DESKTOP).await?;
    let outcome = sign_out_with_stuck_sw(&app, &browser).await;
    finish(&app, [browser], outcome).await
}

/// The account area and the private cache's entries, read in that order in one script: entries
/// seen here were still there when the area was read.
#[derive(Debug, Deserialize)]
struct SignOutReading {
    state: String,
    private: Vec<String>,
}

async fn sign_out_with_stuck_sw(app: &TestApp, browser: &Browser) -> anyhow::Result<()> {
    open_controlled(browser, &app.url("/#general"), SETTLE).await?;
    sign_in_via_form(browser, "Ann", "correct horse battery", true).await?;
    let signed_in = Account {
        state: "signed-in".into(),
        name: "Ann".into(),
    };
    wait_until("the account area to show Ann", SETTLE, POLL, || async {
        Ok((account(browser).await? == signed_in).then_some(()))
    })
    .await?;
    // What the SW would have kept for this session.
    browser
        .eval::<bool>(&format!(
            "const cache = await caches.open('{PRIVATE_CACHE}');
             await cache.put('{SESSION_ENTRY}', new Response('for members only'));
             return true;"
        ))
        .await?;

    click(browser, "signout").await?;
    // Longer than the page's own deadline for the SW, so the test sees how the page ends.
    let reading: SignOutReading = wait_until(
        "the page to finish signing out",
        SETTLE * 2,
        POLL,
        || async {
            let reading: SignOutReading = browser
                .eval(&format!(
                    "const state = document.getElementById('account').dataset.state;
                     const private = (await caches.has('{PRIVATE_CACHE}'))
                         ? (await (await caches.open('{PRIVATE_CACHE}')).keys()).map((r) => r.url)
                         : [];
                     return {{ state, private }};"
                ))
                .await?;
            Ok((reading.state == "signed-out").then_some(reading))
        },
    )
    .await?;
    // The page's own reads after sign-out may already have stored new, anonymous private
    // answers (the room list is one); what must be gone is what the session kept.
    let kept: Vec<&String> = reading
        .private
        .iter()
        .filter(|url| url.ends_with(SESSION_ENTRY))
        .collect();
    ensure!(
        kept.is_empty(),
        "the page says signed out while the private cache still holds the session's {kept:?}"
    );
    let error: String = browser
        .eval("return document.getElementById('account-error')?.textContent ?? '';")
        .await?;
    ensure!(
        error.is_empty(),
        "the page deleted the cache itself, yet reports: {error:?}"
    );
    Ok(())
}
