//! Tests of the real `nudge` binary as a process: killed with SIGKILL mid-burst, no
//! acknowledged write is lost and retries store nothing twice; stopped with SIGTERM, it ends its
//! streams and exits cleanly.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};

/// The `nudge` binary, killed on drop whatever happens in the test.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(data_dir: &Path) -> Self {
        Self::start_with(data_dir, &[])
    }

    fn start_with(data_dir: &Path, flags: &[&str]) -> Self {
        let mut command = crate::process_common::nudge_command();
        command
            .arg("--data-dir")
            .arg(data_dir)
            .args(flags)
            .env("RUST_LOG", "warn")
            .stderr(Stdio::null());
        let (child, base) = crate::process_common::spawn(&mut command);
        Self { child, base }
    }

    fn kill(&mut self) {
        let _ = self.child.kill(); // SIGKILL: no shutdown code runs.
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn post(client: &reqwest::Client, base: &str, key: &str) -> Result<Value, ()> {
    let response = client
        .post(format!("{base}/api/rooms/crash/messages"))
        .header("Idempotency-Key", key)
        .json(&json!({ "author": "burst", "text": key }))
        .send()
        .await
        .map_err(drop)?;
    if response.status() != 201 {
        return Err(());
    }
    response.json().await.map_err(drop)
}

async fn all_messages(client: &reqwest::Client, base: &str) -> Vec<Value> {
    let mut messages = Vec::new();
    let mut after = 0;
    loop {
        let page: Value = client
            .get(format!(
                "{base}/api/rooms/crash/messages?after={after}&limit=100"
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let batch = page["messages"].as_array().unwrap().clone();
        let Some(last) = batch.last() else {
            return messages;
        };
        after = last["id"].as_i64().unwrap();
        messages.extend(batch);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill_and_retries_do_not_duplicate() {
    let data = tempfile::tempdir().unwrap();
    let mut server = Server::start(data.path());
    let client = reqwest::Client::new();
    let acked = Arc::new(std::sync::Mutex::new(HashMap::<String, i64>::new()));
    let ack_count = Arc::new(AtomicUsize::new(0));
    let attempted: Vec<String> = (0..8)
        .flat_map(|w| (0..200).map(move |i| format!("w{w}-{i}")))
        .collect();

    let writers: Vec<_> = (0..8)
        .map(|w| {
            let (client, base) = (client.clone(), server.base.clone());
            let (acked, ack_count) = (acked.clone(), ack_count.clone());
            tokio::spawn(async move {
                for i in 0..200 {
                    let key = format!("w{w}-{i}");
                    match post(&client, &base, &key).await {
                        Ok(message) => {
                            acked
                                .lock()
                                .unwrap()
                                .insert(key, message["id"].as_i64().unwrap());
                            ack_count.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(()) => return, // the server is gone
                    }
                }
            })
        })
        .collect();

    // Kill the server mid-burst, once a good number of writes were acknowledged.
    let what = "300 writes acknowledged";
    crate::wait::wait_until(std::time::Duration::from_secs(30), what, || {
        let ack_count = ack_count.clone();
        async move { ack_count.load(Ordering::SeqCst) >= 300 }
    })
    .await;
    server.kill();
    for writer in writers {
        writer.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 300 && acked.len() < attempted.len(),
        "killed mid-burst: {}",
        acked.len()
    );

    let server = Server::start(data.path());
    let stored = all_messages(&client, &server.base).await;
    let stored_ids: HashMap<String, i64> = stored
        .iter()
        .map(|m| {
            (
                m["text"].as_str().unwrap().to_owned(),
                m["id"].as_i64().unwrap(),
            )
        })
        .collect();
    for (key, id) in &acked {
        assert_eq!(
            stored_ids.get(key),
            Some(id),
            "acknowledged write {key} was lost"
        );
    }

    // Retry everything, acknowledged or not: each request takes effect exactly once.
    for key in &attempted {
        let message = post(&client, &server.base, key)
            .await
            .expect("the retry succeeds");
        if let Some(id) = acked.get(key) {
            assert_eq!(
                message["id"].as_i64().unwrap(),
                *id,
                "a retry answers as the first time"
            );
        }
    }
    let after_retry = all_messages(&client, &server.base).await;
    let texts: Vec<&str> = after_retry
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    let unique: HashSet<&str> = texts.iter().copied().collect();
    assert_eq!(texts.len(), unique.len(), "no duplicates");
    assert_eq!(unique.len(), attempted.len(), "every request stored once");
}

#[tokio::test]
async fn sigterm_ends_the_streams_and_exits_cleanly() {
    let data = tempfile::tempdir().unwrap();
    let mut server = Server::start(data.path());
    let response = reqwest::get(format!("{}/api/events?topic=rooms/general", server.base))
        .await
        .unwrap();
    let mut stream = crate::sse_client::SseClient::new(response);
    assert!(matches!(
        stream.next_item().await,
        Some(crate::sse_client::Item::Retry(_))
    ));

    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(
        stream.next_item().await,
        None,
        "the stream ends on shutdown"
    );
    let mut exit = None;
    let within = std::time::Duration::from_secs(10);
    crate::wait::wait_until(within, "nudge exits after SIGTERM", || {
        exit = server.child.try_wait().unwrap();
        std::future::ready(exit.is_some())
    })
    .await;
    let exit = exit.unwrap();
    assert!(exit.success(), "exit status {exit:?}");
}

/// A field of `/proc/<pid>/status` in bytes (`VmHWM`: the peak resident set; `VmRSS`: now).
fn proc_status_bytes(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"));
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("unreadable {line:?}"));
    kib * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_sign_ins_holds_memory_within_the_stated_bound() {
    const HASHES_AT_ONCE: u64 = 2;
    // Room for what 60 connections and their requests hold beside the hashes.
    const SLACK: u64 = 16 * 1024 * 1024;
    let data = tempfile::tempdir().unwrap();
    let mut command = crate::process_common::nudge_command();
    command
        .arg("--data-dir")
        .arg(data.path())
        .args(["--hash-concurrency", &HASHES_AT_ONCE.to_string()])
        // Every attempt reaches the hasher: the worst case, many addresses and names.
        .args([
            "--login-rate-per-name",
            "0",
            "--login-rate-per-address",
            "0",
        ])
        .env("RUST_LOG", "warn")
        .stderr(Stdio::null());
    let (child, base) = crate::process_common::spawn(&mut command);
    let server = Server { child, base };
    let pid = server.child.id();
    let client = reqwest::Client::new();
    let health = client.get(format!("{}/healthz", server.base)).send().await;
    assert_eq!(health.unwrap().status(), 200);
    let idle = proc_status_bytes(pid, "VmRSS");

    let attempts = (0..60).map(|i| {
        let (client, base) = (client.clone(), server.base.clone());
        async move {
            let body = json!({ "name": format!("user{i}"), "password": "not the password" });
            client
                .post(format!("{base}/api/auth/login"))
                .json(&body)
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        }
    });
    let statuses = futures_util::future::join_all(attempts).await;
    assert!(
        statuses.iter().all(|s| matches!(s, 401 | 503)),
        "every attempt is refused or asked to retry: {statuses:?}"
    );
    let hashed = statuses.iter().filter(|&&s| s == 401).count();
    assert!(
        hashed >= HASHES_AT_ONCE as usize,
        "only {hashed} were hashed"
    );

    let peak = proc_status_bytes(pid, "VmHWM");
    let bound =
        idle + HASHES_AT_ONCE * watercooler::auth::password::HASH_MEMORY_BYTES as u64 + SLACK;
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    eprintln!(
        "sign-in storm: idle {:.1} MiB, peak {:.1} MiB, bound {:.1} MiB, {hashed} of 60 hashed",
        mib(idle),
        mib(peak),
        mib(bound)
    );
    assert!(
        peak <= bound,
        "peak {:.1} MiB past the bound {:.1} MiB (idle {:.1} MiB + {HASHES_AT_ONCE} × 19 MiB + slack)",
        mib(peak),
        mib(bound),
        mib(idle)
    );
}

/// A stream whose client never reads, its writes blocked, does not hold up a stop: SIGTERM ends
/// it at once and the server exits promptly, not after its shutdown timeout (10 s), on both
/// stream paths.
#[tokio::test]
async fn sigterm_ends_a_stream_whose_writes_are_blocked_at_once() {
    use crate::helpers::StreamPath;

    for path in [StreamPath::Dedicated, StreamPath::Shared] {
        let data = tempfile::tempdir().unwrap();
        let flags = ["--send-buffer-bytes", "4096", "--write-timeout-secs", "600"];
        let mut server = Server::start_with(data.path(), &flags);
        let _slow = crate::slow_clients::never_reading_stream(&server.base, path, "rooms/crash");
        // Far more than the socket buffers hold (about 150 bytes an event), fewer than the
        // subscriber's buffer (1024), so the stream is blocked in a write and not overflowed.
        let client = reqwest::Client::new();
        for i in 0..600 {
            post(&client, &server.base, &format!("blocked-{i}"))
                .await
                .expect("a write is acknowledged");
        }

        let status = Command::new("kill")
            .args(["-TERM", &server.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let stopped = std::time::Instant::now();
        let exit = loop {
            if let Some(exit) = server.child.try_wait().unwrap() {
                break exit;
            }
            assert!(
                stopped.elapsed() < std::time::Duration::from_secs(5),
                "{path:?}: nudge exits within 5 s of SIGTERM with a blocked stream"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        };
        assert!(exit.success(), "{path:?}: exit status {exit:?}");
    }
}
