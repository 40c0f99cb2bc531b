//! A new build: the page offers it, and on accept the new ServiceWorker takes over, the page
//! reloads under it, and the old precache is gone.
//!
//! The test's server serves a private copy of `www/`; a "new build" is a changed shell file
//! with its new revision in `gen/precache.js`, so one of the SW's imported scripts differs byte
//! for byte, exactly as `scripts/build-sw.sh` makes it differ after a real change.

use std::time::Duration;

use anyhow::{ensure, Context};
use nudge_e2e::browser::Viewport;
use nudge_e2e::page::{cache_names, snapshot, wait_for_page, POLL};
use nudge_e2e::{finish, spawn_app_with, wait_until, AppOptions, Browser, TestApp};
use thirtyfour::By;

const SETTLE: Duration = Duration::from_secs(20);
const MARK: &str = "/* e2e: a new build */";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_build_is_offered_and_replaces_the_old_one() -> anyhow::Result<()> {
    let app = spawn_app_with(AppOptions {
        copy_www: true,
        ..AppOptions::default()
    })
    .await?;
    let browser = Browser::launch("update", Viewport::DESKTOP).await?;
    let outcome = update(&app, &browser).await;
    finish(&app, [browser], outcome).await
}

async fn update(app: &TestApp, browser: &Browser) -> anyhow::Result<()> {
    browser.goto(&app.url("/#general")).await?;
    wait_for_page(browser, "the room, live and controlled", SETTLE, |s| {
        s.state.as_deref() == Some("live") && s.controlled
    })
    .await?;
    let precache = |names: &[String]| -> Vec<String> {
        names
            .iter()
            .filter(|n| n.starts_with("nudge-precache-"))
            .cloned()
            .collect()
    };
    let old = precache(&cache_names(browser).await?);
    ensure!(old.len() == 1, "one precache before the update: {old:?}");
    ensure!(
        !snapshot(browser).await?.update_offered,
        "no update offered before there is one"
    );

    new_build(app)?;
    browser
        .eval::<bool>(
            "window.__e2eOldPage = true;
             const reg = await navigator.serviceWorker.getRegistration('/');
             await reg.update();
             return true;",
        )
        .await?;
    wait_for_page(browser, "the new-version banner", SETTLE, |s| {
        s.update_offered
    })
    .await?;
    browser
        .driver()
        .find(By::Id("update-accept"))
        .await?
        .click()
        .await?;

    // The new SW activates, claims the page, and the page reloads under it.
    wait_until(
        "the page to reload under the new SW",
        SETTLE,
        POLL,
        || async {
            let reloaded: bool = browser
                .eval("return !window.__e2eOldPage && document.readyState === 'complete';")
                .await?;
            Ok(reloaded.then_some(()))
        },
    )
    .await?;
    let shot = wait_for_page(browser, "the reloaded page, live", SETTLE, |s| {
        s.state.as_deref() == Some("live") && s.controlled
    })
    .await?;
    ensure!(!shot.update_offered, "the banner is gone after the update");
    let css: String = browser
        .eval("return await (await fetch('/style.css')).text();")
        .await?;
    ensure!(css.contains(MARK), "the page runs the new build's files");

    let names = wait_until("the old precache to disappear", SETTLE, POLL, || async {
        let names = cache_names(browser).await?;
        Ok((!names.contains(&old[0]) && precache(&names).len() == 1).then_some(names))
    })
    .await
    .with_context(|| format!("the old precache was {}", old[0]))?;
    eprintln!("caches after the update: {names:?}");
    Ok(())
}

/// Changes `style.css` in the served copy and gives it a new revision in the manifest.
fn new_build(app: &TestApp) -> anyhow::Result<()> {
    let www = app.www_dir();
    let css = www.join("style.css");
    let mut text = std::fs::read_to_string(&css)?;
    text.push_str(&format!("\n{MARK}\n"));
    std::fs::write(&css, text)?;

    let manifest = www.join("gen/precache.js");
    let text = std::fs::read_to_string(&manifest)?;
    let line = text
        .lines()
        .find(|l| l.contains("\"/style.css\""))
        .context("/style.css in gen/precache.js")?;
    let start = line.find("\"revision\": \"").context("a revision")? + "\"revision\": \"".len();
    let end = start + line[start..].find('"').context("the revision's end")?;
    let new_line = format!("{}e2e-new-build{}", &line[..start], &line[end..]);
    std::fs::write(&manifest, text.replace(line, &new_line))?;
    Ok(())
}
