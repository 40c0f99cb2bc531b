//! The second app (`examples/todos`), built only on nudge's public API, run as its real binary:
//! in headless Chromium, a change made in one browser shows in another without a reload, a
//! reload with the server down shows the last list (the SW's copy), and a todo added while the
//! server is down goes up exactly once when it is back. Also its API's contract over HTTP.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{ensure, Context};
use nudge_e2e::browser::Viewport;
use nudge_e2e::page::POLL;
use nudge_e2e::{finish, spawn_binary, wait_until, workspace_root, AppOptions, Browser, TestApp};
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};
use thirtyfour::By;

/// Page loads, SW installs, a server restart and the stream's retry on a busy machine.
const SETTLE: Duration = Duration::from_secs(20);

/// The todos binary from `NUDGE_TODOS_BIN` (default `<workspace>/target/debug/nudge-todos`),
/// serving `examples/todos/www`.
async fn spawn_todos() -> anyhow::Result<TestApp> {
    let root = workspace_root();
    let bin = std::env::var_os("NUDGE_TODOS_BIN")
        .filter(|v| !v.is_empty())
        .map_or_else(|| root.join("target/debug/nudge-todos"), PathBuf::from);
    ensure!(
        bin.is_file(),
        "no {} (build it with `cargo build -p nudge-todos`, or set NUDGE_TODOS_BIN)",
        bin.display()
    );
    spawn_binary(bin, root.join("examples/todos/www"), AppOptions::default()).await
}

/// One reading of the todos page, through its DOM hooks.
#[derive(Debug, Deserialize)]
struct Shot {
    /// `#status[data-state]`: `live`, `reconnecting` or `offline`.
    state: Option<String>,
    /// `#todos li`, top to bottom.
    todos: Vec<Row>,
    /// `#todos[data-source]`: where the last read came from (`network`, `sw`, `offline`).
    source: Option<String>,
    controlled: bool,
    /// Whether the mark the test set on `window` is still there: no reload since.
    marked: bool,
}

#[derive(Debug, Deserialize, PartialEq)]
struct Row {
    text: String,
    done: bool,
    pending: bool,
}

impl Shot {
    fn has(&self, text: &str, done: bool) -> bool {
        self.todos
            .iter()
            .any(|r| r.text == text && r.done == done && !r.pending)
    }
}

const SHOT_JS: &str = r#"
    const list = document.querySelector('#todos');
    return {
        state: document.querySelector('#status')?.dataset.state ?? null,
        todos: [...document.querySelectorAll('#todos li')].map((li) => ({
            text: li.querySelector('.text')?.textContent ?? '',
            done: !!li.querySelector('input')?.checked,
            pending: li.classList.contains('pending'),
        })),
        source: list?.dataset.source ?? null,
        controlled: !!(navigator.serviceWorker && navigator.serviceWorker.controller),
        marked: window.__todosMark === true,
    };
"#;

/// Waits until `pred` holds for a reading of `browser`'s page; a timeout reports the last one.
async fn wait_for(
    browser: &Browser,
    what: &str,
    pred: impl Fn(&Shot) -> bool,
) -> anyhow::Result<Shot> {
    let found = wait_until(what, SETTLE, POLL, || async {
        let shot: Shot = browser.eval(SHOT_JS).await?;
        Ok(pred(&shot).then_some(shot))
    })
    .await;
    match found {
        Ok(shot) => Ok(shot),
        Err(err) => {
            let last = browser.eval::<Shot>(SHOT_JS).await;
            Err(err.context(format!("{}: last reading: {last:?}", browser.name())))
        }
    }
}

/// Types `text` into the form and clicks Add, as a user does.
async fn add_via_form(browser: &Browser, text: &str) -> anyhow::Result<()> {
    let driver = browser.driver();
    driver.find(By::Id("text")).await?.send_keys(text).await?;
    driver
        .find(By::Css("#add [type=submit]"))
        .await?
        .click()
        .await?;
    Ok(())
}

/// Clicks the checkbox of the todo `text`.
async fn toggle(browser: &Browser, text: &str) -> anyhow::Result<()> {
    let clicked: bool = browser
        .eval(&format!(
            "const li = [...document.querySelectorAll('#todos li')]
                 .find((li) => li.querySelector('.text').textContent === {text:?});
             if (!li) return false;
             li.querySelector('input').click();
             return true;"
        ))
        .await?;
    ensure!(clicked, "no todo {text:?} to toggle");
    Ok(())
}

/// The SW's stored copy of the list, if any.
async fn cached_list(browser: &Browser) -> anyhow::Result<Option<String>> {
    browser
        .eval(
            "const hit = await caches.match(new URL('/api/todos', location.origin).href, { ignoreVary: true });
             return hit ? await hit.text() : null;",
        )
        .await
}

/// Opens the page and waits until it is live and controlled by the SW, then reloads it, so that
/// its reads go through the SW (a first visit's went out before the SW took over).
async fn open_controlled(browser: &Browser, url: &str) -> anyhow::Result<()> {
    browser.goto(url).await?;
    let ready = |s: &Shot| s.state.as_deref() == Some("live") && s.controlled;
    wait_for(browser, "the page, live and controlled", ready).await?;
    browser.reload().await?;
    wait_for(browser, "the page, live under the SW", ready).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn todos_are_live_readable_offline_and_sent_once() -> anyhow::Result<()> {
    let mut app = spawn_todos().await?;
    let (a, b) = tokio::try_join!(
        Browser::launch("todos-a", Viewport::DESKTOP),
        Browser::launch("todos-b", Viewport::PHONE)
    )?;
    let outcome = live_offline_once(&mut app, &a, &b).await;
    finish(&app, [a, b], outcome).await
}

async fn live_offline_once(app: &mut TestApp, a: &Browser, b: &Browser) -> anyhow::Result<()> {
    let url = app.url("/");
    tokio::try_join!(open_controlled(a, &url), open_controlled(b, &url))?;

    // A change by A shows in B without a reload: B's mark survives.
    b.eval::<()>("window.__todosMark = true;").await?;
    add_via_form(a, "milk").await?;
    wait_for(b, "A's new todo on B", |s| s.has("milk", false) && s.marked).await?;
    toggle(a, "milk").await?;
    wait_for(b, "A's toggle on B", |s| s.has("milk", true) && s.marked).await?;

    // The nudge refreshed B's stored copy; with the server gone (and the SW stopped, so it
    // starts again offline), a reload shows it.
    wait_until("B's SW to store the toggled list", SETTLE, POLL, || async {
        Ok(cached_list(b)
            .await?
            .filter(|l| l.contains(r#""done":true"#)))
    })
    .await?;
    app.stop()?;
    b.stop_service_workers().await?;
    b.reload().await?;
    let shot = wait_for(b, "B reloaded with the server down", |s| {
        s.state.as_deref() == Some("offline") && !s.marked && s.has("milk", true)
    })
    .await?;
    ensure!(
        shot.source.as_deref() == Some("offline"),
        "read from {:?}",
        shot.source
    );

    // A adds a todo while the server is down: it waits in the outbox, shown as pending.
    wait_for(a, "A to notice the server is gone", |s| {
        matches!(s.state.as_deref(), Some("reconnecting" | "offline"))
    })
    .await?;
    add_via_form(a, "eggs").await?;
    let pending = Row {
        text: "eggs".into(),
        done: false,
        pending: true,
    };
    wait_for(a, "eggs pending on A", |s| s.todos.contains(&pending)).await?;

    // The server is back on the same port with the same data: the outbox goes up, once.
    app.restart().await?;
    let sent = |s: &Shot| s.state.as_deref() == Some("live") && s.has("eggs", false);
    wait_for(a, "A's offline todo sent", |s| {
        sent(s) && s.todos.len() == 2
    })
    .await?;
    wait_for(b, "A's offline todo on B", |s| {
        sent(s) && s.todos.len() == 2
    })
    .await?;

    let list: Value = reqwest::get(app.url("/api/todos")).await?.json().await?;
    let texts: Vec<&str> = list["todos"]
        .as_array()
        .context("todos")?
        .iter()
        .filter_map(|t| t["text"].as_str())
        .collect();
    ensure!(
        texts == ["milk", "eggs"],
        "stored exactly once each, in order: {texts:?}"
    );
    Ok(())
}

/// The API's contract, over HTTP against the real binary: bad input gets a JSON 4xx and writes
/// nothing, a retry with the same `Idempotency-Key` takes effect once, and the list revalidates
/// with its strong ETag.
#[tokio::test]
async fn the_api_refuses_bad_input_writes_once_and_revalidates() -> anyhow::Result<()> {
    let app = spawn_todos().await?;
    let http = reqwest::Client::new();
    let list = app.url("/api/todos");
    let error_code = |res: reqwest::Response| async move {
        let status = res.status();
        let body: Value = res.json().await?;
        anyhow::Ok((
            status,
            body["error"]["code"].as_str().unwrap_or("").to_owned(),
        ))
    };

    for (body, code) in [
        (r#"{"text":"  "}"#, "invalid_text"),
        (r#"{"txt":"x"}"#, "invalid_json"),
        ("not json", "invalid_json"),
    ] {
        let res = http.post(&list).body(body).send().await?;
        assert_eq!(
            error_code(res).await?,
            (StatusCode::BAD_REQUEST, code.to_owned()),
            "{body}"
        );
    }
    let res = http
        .put(app.url("/api/todos/abc"))
        .json(&json!({"done": true}))
        .send()
        .await?;
    assert_eq!(error_code(res).await?.0, StatusCode::BAD_REQUEST);
    let res = http
        .put(app.url("/api/todos/7"))
        .json(&json!({"done": true}))
        .send()
        .await?;
    assert_eq!(
        error_code(res).await?,
        (StatusCode::NOT_FOUND, "no_such_todo".to_owned())
    );

    let empty = http.get(&list).send().await?;
    let etag = empty.headers()["etag"].to_str()?.to_owned();
    assert_eq!(empty.headers()["cache-control"], "no-cache");
    let body: Value = empty.json().await?;
    assert_eq!(body["todos"], json!([]), "bad input wrote nothing");
    let res = http
        .get(&list)
        .header("If-None-Match", &etag)
        .send()
        .await?;
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);

    // The same request twice with one key: one todo, the second answer replayed.
    for replayed in [false, true] {
        let res = http
            .post(&list)
            .header("Idempotency-Key", "k-1")
            .json(&json!({"text": "milk"}))
            .send()
            .await?;
        assert_eq!(res.status(), StatusCode::CREATED);
        assert_eq!(res.headers().contains_key("idempotent-replayed"), replayed);
    }
    let res = http
        .post(&list)
        .header("Idempotency-Key", "k-1")
        .json(&json!({"text": "eggs"}))
        .send()
        .await?;
    assert_eq!(error_code(res).await?.0, StatusCode::UNPROCESSABLE_ENTITY);
    let res = http
        .put(app.url("/api/todos/1"))
        .header("Idempotency-Key", "k-2")
        .json(&json!({"done": true}))
        .send()
        .await?;
    assert_eq!(res.status(), StatusCode::OK);

    let res = http
        .get(&list)
        .header("If-None-Match", &etag)
        .send()
        .await?;
    assert_eq!(res.status(), StatusCode::OK, "a write changes the ETag");
    let body: Value = res.json().await?;
    assert_eq!(
        body["todos"],
        json!([{"id": 1, "text": "milk", "done": true}])
    );
    Ok(())
}
