//! One headless Chromium session, behind a chromedriver of its own.
//!
//! Each `Browser` has its own profile directory, so two of them are two separate users: separate
//! ServiceWorker registrations, caches and localStorage, as two people on two machines.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tempfile::TempDir;
use thirtyfour::prelude::*;
use thirtyfour::{BrowserLogEntry, LoggingPrefsLogLevel};

use crate::artifacts_dir;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const DRIVER_START_TIMEOUT: Duration = Duration::from_secs(20);
const STARTED_MARKER: &str = "started successfully on port ";

/// Flags for headless Chromium as root on a machine without outside network (TOOLCHAIN.md):
/// the background-networking ones stop it from flooding the closed network, and the
/// throttling ones keep timers and streams running in a session nobody looks at.
const CHROMIUM_FLAGS: &[&str] = &[
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
    // The HTTPS tests use the server's self-signed development certificate; a ServiceWorker
    // registers over TLS only when the certificate is trusted or its errors are ignored.
    "--ignore-certificate-errors",
];

/// A browser window size in CSS pixels.
#[derive(Debug, Clone, Copy)]
pub struct Viewport {
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
    /// Emulate a phone (touch, mobile viewport), not just a narrow window.
    pub mobile: bool,
}

impl Viewport {
    /// A desktop window.
    pub const DESKTOP: Viewport = Viewport {
        width: 1280,
        height: 800,
        mobile: false,
    };
    /// The narrowest phone the page supports.
    pub const PHONE: Viewport = Viewport {
        width: 360,
        height: 740,
        mobile: true,
    };
}

/// A headless Chromium session; its chromedriver and every browser process are killed on drop.
pub struct Browser {
    name: String,
    driver: Option<WebDriver>,
    chromedriver: Option<Child>,
    log_path: PathBuf,
    // Last, so the profile is removed after the browser using it is gone.
    _work: TempDir,
}

impl Browser {
    /// Starts a chromedriver on a port it picks itself and opens a fresh Chromium session.
    /// `name` labels screenshots and failure output.
    pub async fn launch(name: &str, viewport: Viewport) -> anyhow::Result<Browser> {
        Browser::launch_with(name, viewport, &[]).await
    }

    /// [`Browser::launch`], keeping the DevTools events named in `devtools_events` in
    /// chromedriver's `devtools` log (`driver().get_log("devtools")`), since its CDP
    /// passthrough returns command results, not events. For single-tab tests only: with this
    /// log on, chromedriver fails to open a new window.
    pub async fn launch_with(
        name: &str,
        viewport: Viewport,
        devtools_events: &[&str],
    ) -> anyhow::Result<Browser> {
        let work = tempfile::Builder::new()
            .prefix("nudge-e2e-chromium-")
            .tempdir()?;
        let profile = work.path().join("profile");
        let log_path = work.path().join("chrome.log");
        // The browser's own log is the only place a ServiceWorker's console errors show up.
        let log = std::fs::File::create(&log_path)?;
        let mut cmd = Command::new(CHROMEDRIVER);
        cmd.args(["--port=0", "--enable-chrome-logs"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            // Its own process group, so one signal on drop reaches chromedriver and every
            // Chromium process it started, even if the session was never quit.
            .process_group(0);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {CHROMEDRIVER}"))?;
        let stdout = child.stdout.take().context("chromedriver stdout")?;
        let mut browser = Browser {
            name: name.to_string(),
            driver: None,
            chromedriver: Some(child),
            log_path,
            _work: work,
        };

        let port = tokio::time::timeout(DRIVER_START_TIMEOUT, driver_port(stdout))
            .await
            .map_err(|_| {
                anyhow!("chromedriver did not report its port within {DRIVER_START_TIMEOUT:?}")
            })??;

        let mut caps = DesiredCapabilities::chrome();
        caps.set_binary(CHROMIUM)?;
        for flag in CHROMIUM_FLAGS {
            caps.add_arg(flag)?;
        }
        caps.add_arg(&format!("--user-data-dir={}", profile.display()))?;
        caps.add_arg(&format!(
            "--window-size={},{}",
            viewport.width, viewport.height
        ))?;
        caps.set_browser_log_level(LoggingPrefsLogLevel::All)?;
        if !devtools_events.is_empty() {
            caps.add_experimental_option("devToolsEventsToLog", devtools_events)?;
            caps.set_logging_prefs("devtools", LoggingPrefsLogLevel::All)?;
        }
        let driver = WebDriver::new(format!("http://127.0.0.1:{port}"), caps)
            .await
            .context("opening a Chromium session")?;
        driver
            .set_page_load_timeout(Duration::from_secs(20))
            .await?;
        driver.set_script_timeout(Duration::from_secs(10)).await?;
        browser.driver = Some(driver);
        // Headless windows have a minimum width (500 px here), so a phone-sized viewport has to
        // be emulated; the override lasts for the tab, across navigations.
        browser
            .cdp(
                "Emulation.setDeviceMetricsOverride",
                serde_json::json!({
                    "width": viewport.width,
                    "height": viewport.height,
                    "deviceScaleFactor": 1,
                    "mobile": viewport.mobile,
                }),
            )
            .await?;
        Ok(browser)
    }

    /// The WebDriver session, for anything the helpers below do not cover.
    pub fn driver(&self) -> &WebDriver {
        self.driver
            .as_ref()
            .expect("the session is open until quit or drop")
    }

    /// The label given at launch.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Navigates and waits for the load event.
    pub async fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.driver()
            .goto(url)
            .await
            .with_context(|| format!("{}: opening {url}", self.name))
    }

    /// Opens a new tab of this session at `url`, switches to it and returns its handle. Tabs of
    /// one session share one profile: one ServiceWorker, one Cache Storage, one leader lock.
    pub async fn open_tab(&self, url: &str) -> anyhow::Result<WindowHandle> {
        let handle = self.driver().new_tab().await?;
        self.switch_to(&handle).await?;
        self.goto(url).await?;
        Ok(handle)
    }

    /// Makes `handle` the tab that [`Browser::eval`] and the other helpers act on.
    pub async fn switch_to(&self, handle: &WindowHandle) -> anyhow::Result<()> {
        self.driver()
            .switch_to_window(handle.clone())
            .await
            .with_context(|| format!("{}: switching tabs", self.name))
    }

    /// The current tab's handle.
    pub async fn current_tab(&self) -> anyhow::Result<WindowHandle> {
        Ok(self.driver().window().await?)
    }

    /// Closes the tab `handle` (as a user closing it: its document goes away, with its locks
    /// and streams) and switches to `then`.
    pub async fn close_tab(
        &self,
        handle: &WindowHandle,
        then: &WindowHandle,
    ) -> anyhow::Result<()> {
        self.switch_to(handle).await?;
        self.driver().close_window().await?;
        self.switch_to(then).await
    }

    /// Reloads the page and waits for the load event.
    pub async fn reload(&self) -> anyhow::Result<()> {
        self.driver()
            .refresh()
            .await
            .with_context(|| format!("{}: reloading", self.name))
    }

    /// Runs `body` as the body of an async function in the page and returns its result.
    /// `await` may be used; WebDriver waits for the promise.
    pub async fn eval<T: DeserializeOwned>(&self, body: &str) -> anyhow::Result<T> {
        let script = format!("return (async () => {{ {body} }})();");
        let ret = self.driver().execute(script, Vec::<Value>::new()).await?;
        Ok(serde_json::from_value(ret.json().clone())?)
    }

    /// Sends a DevTools command to the page's target through chromedriver.
    pub async fn cdp(&self, method: &str, params: Value) -> anyhow::Result<Value> {
        self.driver()
            .cdp()
            .send_raw(method, params)
            .await
            .with_context(|| format!("{}: CDP {method}", self.name))
    }

    /// Stops every ServiceWorker of this browser, as the browser itself does with idle ones, so
    /// the next fetch has to start the worker again (with whatever network there is then).
    pub async fn stop_service_workers(&self) -> anyhow::Result<()> {
        self.cdp("ServiceWorker.enable", serde_json::json!({}))
            .await?;
        self.cdp("ServiceWorker.stopAllWorkers", serde_json::json!({}))
            .await?;
        Ok(())
    }

    /// Saves a PNG of the viewport as `artifacts/<file_name>` and returns its path.
    pub async fn screenshot(&self, file_name: &str) -> anyhow::Result<PathBuf> {
        let path = artifacts_dir()?.join(file_name);
        let png = self.driver().screenshot_as_png().await?;
        std::fs::write(&path, png).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    /// Console output and page errors collected since the last call.
    pub async fn console(&self) -> anyhow::Result<Vec<BrowserLogEntry>> {
        Ok(self.driver().browser_log().await?)
    }

    /// Console lines from the browser's own log: unlike [`Browser::console`], these include
    /// the ServiceWorker's (a worker that fails to evaluate says why only there).
    pub fn browser_console_lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log_path)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(":CONSOLE"))
            .map(String::from)
            .collect()
    }

    /// Copies the browser's whole log to `artifacts/<name>-chrome.log` and returns its path.
    pub fn save_browser_log(&self) -> anyhow::Result<PathBuf> {
        let path = artifacts_dir()?.join(format!("{}-chrome.log", self.name));
        std::fs::copy(&self.log_path, &path)?;
        Ok(path)
    }

    /// Prints the page's and the ServiceWorker's console output to stderr and saves the browser
    /// log; for failure reports, so it never fails itself.
    pub async fn dump_console(&self) {
        eprintln!("--- browser log of {} (page and workers) ---", self.name);
        for line in self.browser_console_lines() {
            eprintln!("{line}");
        }
        if let Ok(path) = self.save_browser_log() {
            eprintln!("(full log: {})", path.display());
        }
        match self.console().await {
            Ok(entries) => {
                eprintln!("--- console of {} ---", self.name);
                for e in entries {
                    eprintln!("[{}] {}", e.level, e.message);
                }
            }
            Err(err) => eprintln!("--- console of {} unavailable: {err:#}", self.name),
        }
    }

    /// Ends the session politely, then makes sure nothing of it is left running.
    pub async fn quit(mut self) -> anyhow::Result<()> {
        if let Some(driver) = self.driver.take() {
            driver.quit().await?;
        }
        self.kill_processes();
        Ok(())
    }

    fn kill_processes(&mut self) {
        if let Some(mut child) = self.chromedriver.take() {
            // The whole group: chromedriver and the Chromium processes it started.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Reads chromedriver's stdout until it says which port it took, then keeps draining it.
async fn driver_port(stdout: std::process::ChildStdout) -> anyhow::Result<u16> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.split(STARTED_MARKER).nth(1) {
                let port = rest.trim_end_matches('.').trim().parse::<u16>();
                if let Some(tx) = tx.take() {
                    let _ = tx.send(port.map_err(|e| anyhow!("bad port in {line:?}: {e}")));
                }
            }
        }
        if let Some(tx) = tx.take() {
            let _ = tx.send(Err(anyhow!(
                "chromedriver exited before reporting its port"
            )));
        }
    });
    match rx.await {
        Ok(port) => port,
        Err(_) => bail!("chromedriver reader thread ended"),
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Killing first makes a forgotten session cheap: there is nothing left to ask politely.
        self.kill_processes();
        if let Some(driver) = self.driver.take() {
            let _ = driver.leak();
        }
    }
}
