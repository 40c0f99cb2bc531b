//! What the Watercooler page shows, read through its stable DOM hooks: `#status[data-state]`,
//! `#messages li.message .author/.text`, and the `#compose` form.

use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;
use thirtyfour::By;

use crate::{wait_until, Browser};

/// How often page conditions are polled: fast enough to measure a 5 s budget meaningfully.
pub const POLL: Duration = Duration::from_millis(100);

/// One reading of the page.
#[derive(Debug, Clone, Deserialize)]
pub struct Snapshot {
    /// `#status[data-state]`, or `None` when the page is not Watercooler (an error page).
    pub state: Option<String>,
    /// `(author, text)` of each `li.message`, top to bottom.
    pub messages: Vec<(String, String)>,
    /// `#messages[data-source]`: where the last rendering came from (`network`, `sw` after the
    /// SW's `updated` message, `offline` for the SW's stored copy).
    pub source: Option<String>,
    /// Whether a ServiceWorker controls the page.
    pub controlled: bool,
    /// `#status[data-tab]`: `leader` in the one tab of the browser that holds the stream.
    pub tab: Option<String>,
    /// Texts of the `li.message.pending` rows (typed here, not confirmed yet), in order.
    pub pending: Vec<String>,
    /// Whether the "new version" banner (`#update`) is shown.
    pub update_offered: bool,
    /// `location.href`, for failure messages.
    pub url: String,
    /// The start of the body text, for failure messages (an error page says why).
    pub body: String,
}

impl Snapshot {
    /// `(author, text)` of the confirmed messages: [`Snapshot::messages`] without the pending
    /// tail.
    pub fn confirmed(&self) -> &[(String, String)] {
        &self.messages[..self.messages.len().saturating_sub(self.pending.len())]
    }

    /// A compact, human-readable account of the reading, for failure messages.
    pub fn describe(&self) -> String {
        let mut out = format!(
            "state={:?} source={:?} tab={:?} controlled={} update_offered={} url={} messages={} pending={:?}",
            self.state,
            self.source,
            self.tab,
            self.controlled,
            self.update_offered,
            self.url,
            self.messages.len(),
            self.pending
        );
        for (author, text) in &self.messages {
            out.push_str(&format!("\n  {author}: {text}"));
        }
        if self.state.is_none() {
            out.push_str(&format!("\n  body: {:?}", self.body));
        }
        out
    }
}

const SNAPSHOT_JS: &str = r#"
    const status = document.querySelector('#status');
    const items = [...document.querySelectorAll('#messages li.message')];
    return {
        state: status ? status.getAttribute('data-state') : null,
        source: document.querySelector('#messages')?.getAttribute('data-source') ?? null,
        messages: items.map((li) => [
            li.querySelector('.author')?.textContent ?? '',
            li.querySelector('.text')?.textContent ?? '',
        ]),
        controlled: !!(navigator.serviceWorker && navigator.serviceWorker.controller),
        tab: status ? status.getAttribute('data-tab') : null,
        pending: [...document.querySelectorAll('#messages li.message.pending .text')].map((t) => t.textContent),
        update_offered: !!document.querySelector('#update:not([hidden])'),
        url: location.href,
        body: (document.body ? document.body.innerText : '').slice(0, 300),
    };
"#;

/// Reads the page once.
pub async fn snapshot(browser: &Browser) -> anyhow::Result<Snapshot> {
    browser.eval(SNAPSHOT_JS).await
}

/// Waits until `pred` holds for a reading of the page; a timeout reports the last reading.
pub async fn wait_for_page(
    browser: &Browser,
    what: &str,
    timeout: Duration,
    pred: impl Fn(&Snapshot) -> bool,
) -> anyhow::Result<Snapshot> {
    let found = wait_until(what, timeout, POLL, || async {
        let shot = snapshot(browser).await?;
        Ok(pred(&shot).then_some(shot))
    })
    .await;
    match found {
        Ok(shot) => Ok(shot),
        Err(err) => {
            let last = snapshot(browser)
                .await
                .map(|s| s.describe())
                .unwrap_or_else(|e| format!("unreadable: {e:#}"));
            Err(err.context(format!(
                "{}: last reading of the page: {last}",
                browser.name()
            )))
        }
    }
}

/// Opens `url` and waits, up to `settle` for each step, until the page is live and controlled by
/// the SW: a first visit's reads went out before the SW took over, so the page is then read
/// once more under it.
pub async fn open_controlled(browser: &Browser, url: &str, settle: Duration) -> anyhow::Result<()> {
    browser.goto(url).await?;
    let ready = |s: &Snapshot| s.state.as_deref() == Some("live") && s.controlled;
    if wait_for_page(browser, "the page, live and controlled", settle, ready)
        .await
        .is_err()
    {
        browser.reload().await?;
        wait_for_page(
            browser,
            "the page, controlled after a reload",
            settle,
            ready,
        )
        .await?;
    }
    Ok(())
}

/// Fills in and submits the compose form the way a user does: typing, then clicking Send.
pub async fn post_via_form(browser: &Browser, author: &str, text: &str) -> anyhow::Result<()> {
    let driver = browser.driver();
    let author_input = driver.find(By::Id("author")).await.context("#author")?;
    author_input.clear().await?;
    author_input.send_keys(author).await?;
    let text_input = driver.find(By::Id("text")).await.context("#text")?;
    text_input.clear().await?;
    text_input.send_keys(text).await?;
    driver
        .find(By::Css("#compose [type=submit]"))
        .await
        .context("submit button")?
        .click()
        .await?;
    Ok(())
}

/// The body of the room's `recent` resource in the ServiceWorker's Cache Storage, if stored.
pub async fn cached_recent(browser: &Browser, room: &str) -> anyhow::Result<Option<String>> {
    browser
        .eval(&format!(
            r#"
            const url = new URL('/api/rooms/{room}/recent', location.origin).href;
            const hit = await caches.match(url, {{ ignoreVary: true }});
            return hit ? await hit.text() : null;
            "#
        ))
        .await
}

/// The names of every cache in the page's Cache Storage.
pub async fn cache_names(browser: &Browser) -> anyhow::Result<Vec<String>> {
    browser.eval("return await caches.keys();").await
}

/// Every `(cache name, request URL)` in the page's Cache Storage.
pub async fn cached_urls(browser: &Browser) -> anyhow::Result<Vec<(String, String)>> {
    browser
        .eval(
            r#"
            const out = [];
            for (const name of await caches.keys()) {
                const cache = await caches.open(name);
                for (const req of await cache.keys()) out.push([name, req.url]);
            }
            return out;
            "#,
        )
        .await
}

/// `#account[data-state]` (`signed-in` / `signed-out`) and `#account-name`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Account {
    /// `#account[data-state]`.
    pub state: String,
    /// The name shown as signed in (empty when signed out).
    pub name: String,
}

/// Reads the account area once.
pub async fn account(browser: &Browser) -> anyhow::Result<Account> {
    browser
        .eval(
            r#"
            const el = document.getElementById('account');
            return {
                state: el ? el.dataset.state : '',
                name: document.getElementById('account-name')?.textContent ?? '',
            };
            "#,
        )
        .await
}

/// Signs in (`register == false`) or registers through the page's form, as a user does: opens
/// the folded form, types, clicks the button.
pub async fn sign_in_via_form(
    browser: &Browser,
    name: &str,
    password: &str,
    register: bool,
) -> anyhow::Result<()> {
    let driver = browser.driver();
    let open: bool = browser
        .eval("return document.getElementById('signin-panel').open;")
        .await?;
    if !open {
        // The summary toggles: click it only to unfold the form.
        driver
            .find(By::Css("#signin-panel > summary"))
            .await
            .context("#signin-panel summary")?
            .click()
            .await?;
    }
    let name_input = driver.find(By::Id("signin-name")).await?;
    name_input.clear().await?;
    name_input.send_keys(name).await?;
    let password_input = driver.find(By::Id("signin-password")).await?;
    password_input.clear().await?;
    password_input.send_keys(password).await?;
    let button = if register {
        "register-submit"
    } else {
        "signin-submit"
    };
    driver.find(By::Id(button)).await?.click().await?;
    Ok(())
}

/// Clicks the element with id `id`.
pub async fn click(browser: &Browser, id: &str) -> anyhow::Result<()> {
    browser
        .driver()
        .find(By::Id(id))
        .await
        .with_context(|| format!("#{id}"))?
        .click()
        .await?;
    Ok(())
}

/// The texts of every waiting message, read directly rather than from the screen: the entries of
/// the ServiceWorker's outbox (IndexedDB `nudge-outbox`/`entries`, each a queued request whose
/// body is the message's JSON) and of the page's own (`watercooler`/`outbox`, for a page no SW
/// controlled). Neither database is created when it does not exist yet.
pub async fn outbox_texts(browser: &Browser) -> anyhow::Result<Vec<String>> {
    browser
        .eval(
            r#"
            const names = (await indexedDB.databases()).map((d) => d.name);
            const rows = async (name, store) => {
                if (!names.includes(name)) return [];
                const db = await new Promise((resolve, reject) => {
                    const req = indexedDB.open(name);
                    req.onsuccess = () => resolve(req.result);
                    req.onerror = () => reject(req.error);
                });
                try {
                    if (!db.objectStoreNames.contains(store)) return [];
                    return await new Promise((resolve, reject) => {
                        const req = db.transaction(store).objectStore(store).getAll();
                        req.onsuccess = () => resolve(req.result);
                        req.onerror = () => reject(req.error);
                    });
                } finally {
                    db.close();
                }
            };
            const fromSw = (await rows('nudge-outbox', 'entries'))
                .map((r) => JSON.parse(new TextDecoder().decode(r.body)).text);
            const fromPage = (await rows('watercooler', 'outbox')).map((r) => r.body.text);
            return [...fromPage, ...fromSw];
            "#,
        )
        .await
}
