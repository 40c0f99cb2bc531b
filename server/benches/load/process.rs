//! Servers under test, each a child process killed on drop.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use anyhow::Context;
use tempfile::TempDir;

/// A running server process and its base URL.
pub struct ServerProcess {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    _data: Option<TempDir>,
}

impl ServerProcess {
    /// The real `nudge` binary on a fresh data directory.
    pub fn nudge() -> anyhow::Result<Self> {
        Self::nudge_with(&[])
    }

    /// The real `nudge` binary on a PostgreSQL database (several may share one).
    pub fn nudge_postgres(database_url: &str) -> anyhow::Result<Self> {
        Self::nudge_with(&["--database-url", database_url])
    }

    /// The real `nudge` binary with Web Push on (loopback push services allowed).
    pub fn nudge_pushing() -> anyhow::Result<Self> {
        Self::nudge_with(&[
            "--push-contact",
            "mailto:bench@example.com",
            "--push-allow-local-http",
        ])
    }

    /// The data directory (where the store's file is).
    pub fn data_dir(&self) -> Option<&std::path::Path> {
        self._data.as_ref().map(TempDir::path)
    }

    fn nudge_with(extra: &[&str]) -> anyhow::Result<Self> {
        let data = tempfile::tempdir()?;
        let mut command = Command::new(env!("CARGO_BIN_EXE_nudge"));
        command
            .args([
                "--bind",
                "127.0.0.1:0",
                "--www-dir",
                concat!(env!("CARGO_MANIFEST_DIR"), "/../www"),
            ])
            .args([
                "--write-rate-per-address",
                "0",
                "--max-streams-per-address",
                "0",
                "--stream-open-rate-per-address",
                "0",
                // Every round starts on a new store, where writers' first posts race to create
                // the room: each of them would take a room-creation token.
                "--rooms-per-hour-per-address",
                "0",
            ])
            .args(extra)
            .arg("--data-dir")
            .arg(data.path())
            .env("RUST_LOG", "error");
        Self::spawn(command, Some(data))
    }

    /// This benchmark binary in one of its baseline roles.
    pub fn baseline(role: &str) -> anyhow::Result<Self> {
        let mut command = Command::new(std::env::current_exe()?);
        command.args(["--role", role]);
        Self::spawn(command, None)
    }

    /// A peer from the `nudge-bench-peers` binary (`make bench` builds it beside this one, in
    /// the same profile directory), as its users run it.
    pub fn peer(role: &str) -> anyhow::Result<Self> {
        let exe = std::env::current_exe()?;
        // This binary is `target/<profile>/deps/load-…`; the peers are `target/<profile>/…`.
        let peers = exe
            .parent()
            .and_then(|deps| deps.parent())
            .map(|dir| dir.join("nudge-bench-peers"))
            .filter(|path| path.exists())
            .context("nudge-bench-peers is missing: `make bench` builds it (cargo build --release -p nudge-bench-peers)")?;
        let mut command = Command::new(peers);
        command.args(["--role", role]);
        Self::spawn(command, None)
    }

    fn spawn(mut command: Command, data: Option<TempDir>) -> anyhow::Result<Self> {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting a server")?;
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().context("stdout")?).read_line(&mut line)?;
        let base = line
            .trim()
            .strip_prefix("listening on ")
            .with_context(|| format!("unexpected first line {line:?}"))?
            .to_owned();
        Ok(Self {
            child,
            base,
            _data: data,
        })
    }

    /// Resident set size of the server, in KiB.
    pub fn rss_kib(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .context("VmRSS")
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
