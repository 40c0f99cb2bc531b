//! Over TLS the server speaks HTTP/2, and that is what lets a page's event stream and all of its
//! fetches share one connection. The proof is taken on the server's side (responses served by
//! the ServiceWorker report no protocol in the page, and an open stream has no timing entry):
//! the server's per-connection request log must show the stream and the API reads of the page
//! on one HTTP/2 connection. Connections that carried no request do not count, and the test's
//! own plain-HTTP requests (seeding, reading the log) are HTTP/1.1.

use std::time::Duration;

use anyhow::ensure;
use nudge_e2e::app::{AppOptions, Connection};
use nudge_e2e::browser::Viewport;
use nudge_e2e::page::wait_for_page;
use nudge_e2e::{finish, spawn_app_with, wait_until, Browser, TestApp};

const SETTLE: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_and_the_api_reads_share_one_http2_connection() -> anyhow::Result<()> {
    let app = spawn_app_with(AppOptions {
        tls: true,
        ..AppOptions::default()
    })
    .await?;
    let browser = Browser::launch("h2", Viewport::DESKTOP).await?;
    let outcome = checks(&app, &browser).await;
    finish(&app, [browser], outcome).await
}

fn carried(connection: &Connection, prefix: &str) -> bool {
    connection.requests.iter().any(|r| r.starts_with(prefix))
}

async fn checks(app: &TestApp, browser: &Browser) -> anyhow::Result<()> {
    app.post_message("general", "Seeder", "before the page")
        .await?;
    browser
        .goto(&format!("{}/#general", app.tls_url()?))
        .await?;
    wait_for_page(browser, "the room over HTTPS, live", SETTLE, |s| {
        s.state.as_deref() == Some("live") && s.messages.len() == 1
    })
    .await?;
    // A nudge makes the page (through its SW) read the room again while the stream is open.
    app.post_message("general", "Seeder", "while live").await?;
    wait_for_page(browser, "the nudged message", SETTLE, |s| {
        s.messages.len() == 2
    })
    .await?;

    let h2 = wait_until(
        "the page's requests in the log",
        SETTLE,
        Duration::from_millis(100),
        || async {
            let h2: Vec<Connection> = app
                .connections()
                .await?
                .into_iter()
                .filter(|c| c.version == "HTTP/2.0" && !c.requests.is_empty())
                .collect();
            let complete = h2.iter().any(|c| {
                carried(c, "GET /api/events") && carried(c, "GET /api/rooms/general/recent")
            });
            Ok(complete.then_some(h2))
        },
    )
    .await?;
    ensure!(
        h2.len() == 1,
        "the browser's requests went over {} HTTP/2 connections: {h2:#?}",
        h2.len()
    );
    let reads = h2[0]
        .requests
        .iter()
        .filter(|r| r.starts_with("GET /api/rooms/general/recent"))
        .count();
    ensure!(
        reads >= 2,
        "the first read and the nudged one: {:#?}",
        h2[0]
    );
    Ok(())
}
