//! chromedriver and fresh headless Chromium sessions, one profile each.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::Value;
use tempfile::TempDir;
use thirtyfour::prelude::*;

/// The browser under test.
pub const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const STARTED: &str = "started successfully on port ";

/// TOOLCHAIN.md's flags for headless Chromium as root on a machine without outside network;
/// the throttling ones keep a page that nobody looks at from being slowed down mid-run.
const FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-dev-shm-usage",
];

/// One chromedriver for the whole benchmark; killed by [`Driver::stop`] or on drop.
pub struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    /// Starts chromedriver on a port it picks and reads that port from its first lines.
    pub async fn start() -> anyhow::Result<Driver> {
        let mut child = Command::new(CHROMEDRIVER)
            .arg("--port=0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting chromedriver")?;
        let stdout = child.stdout.take().context("chromedriver's stdout")?;
        let port = tokio::time::timeout(
            Duration::from_secs(20),
            tokio::task::spawn_blocking(move || {
                BufReader::new(stdout)
                    .lines()
                    .map_while(Result::ok)
                    .find_map(|line| {
                        let rest = line.split(STARTED).nth(1)?;
                        rest.trim_end_matches('.').trim().parse::<u16>().ok()
                    })
            }),
        )
        .await;
        let Ok(Ok(Some(port))) = port else {
            let _ = child.kill();
            bail!("chromedriver did not report its port within 20 s");
        };
        Ok(Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        })
    }

    /// A new Chromium with a profile of its own: no SW, no cache, no compiled code kept.
    pub async fn session(&self) -> anyhow::Result<Session> {
        let profile = tempfile::tempdir()?;
        let mut caps = DesiredCapabilities::chrome();
        caps.set_binary(CHROMIUM)?;
        for flag in FLAGS {
            caps.add_arg(flag)?;
        }
        caps.add_arg(&format!("--user-data-dir={}", profile.path().display()))?;
        let driver = WebDriver::new(&self.url, caps)
            .await
            .context("opening a Chromium session")?;
        driver.set_script_timeout(Duration::from_secs(60)).await?;
        Ok(Session {
            driver,
            _profile: profile,
        })
    }

    /// Kills chromedriver.
    pub async fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// One browser session; [`Session::quit`] closes it, and its profile goes with it.
pub struct Session {
    driver: WebDriver,
    // After the driver, so the profile is removed once the browser is gone.
    _profile: TempDir,
}

impl Session {
    /// Loads `url` and waits for it.
    pub async fn goto(&self, url: &str) -> anyhow::Result<()> {
        Ok(self.driver.goto(url).await?)
    }

    /// Runs an asynchronous script that reports through its last argument.
    pub async fn execute_async(&self, script: &str, args: Vec<Value>) -> anyhow::Result<Value> {
        let ret = self.driver.execute_async(script.to_owned(), args).await?;
        Ok(ret.json().clone())
    }

    /// Stops every ServiceWorker of this browser, as the browser does with idle ones (DevTools
    /// `ServiceWorker.stopAllWorkers`, which answers once they are stopped), so that the next
    /// fetch has to start the worker again.
    pub async fn stop_service_workers(&self) -> anyhow::Result<()> {
        let cdp = self.driver.cdp();
        cdp.send_raw("ServiceWorker.enable", serde_json::json!({}))
            .await
            .context("CDP ServiceWorker.enable")?;
        cdp.send_raw("ServiceWorker.stopAllWorkers", serde_json::json!({}))
            .await
            .context("CDP ServiceWorker.stopAllWorkers")?;
        Ok(())
    }

    /// Closes the browser.
    pub async fn quit(self) -> anyhow::Result<()> {
        Ok(self.driver.quit().await?)
    }
}
