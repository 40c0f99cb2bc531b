//! End-to-end harness: the real `nudge` binary and real headless Chromium, driven from Rust.
//!
//! Modules:
//! - [`app`]: starts the server on port 0 with a fresh data directory ([`spawn_app`]), speaks
//!   its HTTP API for seeding and checks, and kills it on drop.
//! - [`browser`]: one headless Chromium session behind its own chromedriver, with the
//!   DevTools commands the tests need; every process is killed on drop.
//! - [`metrics`]: samples from the server's `/metrics`, to count streams and requests.
//! - [`page`]: reads the Watercooler page through its stable DOM hooks and drives its form.
//! - [`push`]: Web Push delivered through DevTools, and the notifications the SW showed.
//! - [`wait`]: [`wait_until`], a bounded poll that replaces sleeps.
//!
//! Everything a test starts is owned by a value whose `Drop` kills it, so a failing assertion
//! (a panic) leaves no server, driver or browser behind.

pub mod app;
pub mod browser;
pub mod metrics;
pub mod page;
pub mod push;
pub mod wait;

pub use app::{spawn_app, spawn_app_with, spawn_binary, AppOptions, TestApp};
pub use browser::Browser;
pub use wait::wait_until;

use std::path::PathBuf;

/// The workspace root, where `target/`, `www/` and `artifacts/` live.
pub fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

/// `artifacts/` at the workspace root (git-ignored), created on first use: screenshots and
/// logs a human looks at after a run.
pub fn artifacts_dir() -> anyhow::Result<PathBuf> {
    let dir = workspace_root().join("artifacts");
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Ends a browser test: on failure, each browser's console, a screenshot of it and the server's
/// log go to stderr and `artifacts/`; every browser is closed either way. Returns the test's
/// outcome first, then any failure to close.
pub async fn finish(
    app: &TestApp,
    browsers: impl IntoIterator<Item = Browser>,
    outcome: anyhow::Result<()>,
) -> anyhow::Result<()> {
    let browsers: Vec<Browser> = browsers.into_iter().collect();
    if outcome.is_err() {
        for browser in &browsers {
            browser.dump_console().await;
            let _ = browser
                .screenshot(&format!("{}-failure.png", browser.name()))
                .await;
        }
        eprintln!("{}", app.log_tail());
    }
    let mut quit = Ok(());
    for browser in browsers {
        let closed = browser.quit().await;
        if quit.is_ok() {
            quit = closed;
        }
    }
    outcome?;
    quit
}
