//! Presence is ephemeral: never cacheable, never logged.

use std::time::Duration;

use serde_json::json;
use watercooler::{Application, Config};

use crate::helpers::{assert_error, spawn_app};
use crate::wait::wait_until;

#[tokio::test]
async fn presence_is_no_store_and_lists_who_announced() {
    let app = spawn_app().await;
    let empty = app.get("/api/rooms/general/presence").await;
    assert_eq!(empty.status(), 200);
    assert_eq!(empty.headers()["cache-control"], "no-store");
    assert!(!empty.headers().contains_key("etag"));

    let announced = app
        .client
        .post(app.url("/api/rooms/general/presence"))
        .json(&json!({ "name": "bob" }))
        .send()
        .await
        .unwrap();
    assert_eq!(announced.status(), 200);
    let here = app.get_json("/api/rooms/general/presence").await;
    assert_eq!(here["here"], json!(["bob"]));
}

#[tokio::test]
async fn a_presence_change_sends_a_nudge_without_an_id() {
    let app = spawn_app().await;
    let mut stream = app.subscribe("topic=rooms/general", None).await;
    app.client
        .post(app.url("/api/rooms/general/presence"))
        .json(&json!({ "name": "bob" }))
        .send()
        .await
        .unwrap();
    let event = stream.next_event().await.unwrap();
    assert_eq!(event.event, "changed");
    assert!(!event.has_id, "presence is not logged, so it has no id");
    assert_eq!(event.json()["url"], "/api/rooms/general/presence");
}

#[tokio::test]
async fn a_room_that_does_not_exist_has_no_presence() {
    let app = spawn_app().await;
    let announced = app
        .client
        .post(app.url("/api/rooms/no-such-room/presence"))
        .json(&json!({ "name": "bob" }))
        .send()
        .await
        .unwrap();
    assert_error(announced, 404, "room_not_found").await;
    let read = app.get("/api/rooms/no-such-room/presence").await;
    assert_error(read, 404, "room_not_found").await;
    // A room created a moment ago has presence at once.
    let created = app
        .client
        .put(app.url("/api/rooms/new-room"))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let announced = app
        .client
        .post(app.url("/api/rooms/new-room/presence"))
        .json(&json!({ "name": "bob" }))
        .send()
        .await
        .unwrap();
    assert_eq!(announced.status(), 200);
}

#[tokio::test]
async fn refused_and_expired_announcements_are_not_kept() {
    // Built here rather than by `spawn_app`, to watch the server's presence from outside.
    let data = tempfile::tempdir().unwrap();
    let www = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../www");
    let mut config = Config::for_tests(data.path().to_owned(), www);
    config.presence_ttl_secs = 1;
    let app = Application::build(config).await.unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    let presence = app.presence();
    tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::new();
    let announce = |room: String, name: String| {
        client
            .post(format!("{base}/api/rooms/{room}/presence"))
            .json(&json!({ "name": name }))
            .send()
    };
    for i in 0..200 {
        let refused = announce(format!("made-up-{i}"), "bob".into())
            .await
            .unwrap();
        assert_eq!(refused.status(), 404);
    }
    assert_eq!(presence.entries(), 0, "nothing kept for unknown rooms");
    for i in 0..50 {
        let accepted = announce("general".into(), format!("user-{i}"))
            .await
            .unwrap();
        assert_eq!(accepted.status(), 200);
    }
    assert_eq!(presence.entries(), 50);
    // Nobody reads the room again: the sweeper alone forgets them once they expire.
    wait_until(
        Duration::from_secs(10),
        "expired presence swept",
        || async { presence.entries() == 0 },
    )
    .await;
}

/// The server's resident memory, from `/proc/<pid>/status`, in kB.
fn resident_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmRSS line")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn announcing_in_ten_thousand_made_up_rooms_costs_no_memory() {
    let data = tempfile::tempdir().unwrap();
    let mut command = crate::process_common::nudge_command();
    command
        .arg("--data-dir")
        .arg(data.path())
        .env("RUST_LOG", "error")
        .stderr(std::process::Stdio::null());
    let (mut child, base) = crate::process_common::spawn(&mut command);
    let client = reqwest::Client::new();
    let announce = |i: usize| {
        let (client, base) = (client.clone(), base.clone());
        async move {
            let response = client
                .post(format!("{base}/api/rooms/made-up-{i}/presence"))
                .json(&json!({ "name": format!("user-{i}") }))
                .send()
                .await
                .unwrap();
            response.status().as_u16()
        }
    };
    // Warm-up, so that the connections and the allocator's first arenas are counted out.
    for start in (0..1_000).step_by(50) {
        futures_util::future::join_all((start..start + 50).map(announce)).await;
    }
    let before = resident_kb(child.id());
    for start in (0..10_000).step_by(50) {
        let batch = (start..start + 50).map(announce);
        let statuses = futures_util::future::join_all(batch).await;
        assert!(statuses.iter().all(|s| *s == 404), "{statuses:?}");
    }
    let grown = resident_kb(child.id()).saturating_sub(before);
    let _ = child.kill();
    let _ = child.wait();
    eprintln!("resident memory grew by {grown} kB");
    // Kept, they took about 6 MB; refused, what remains is the allocator's noise.
    assert!(grown < 2048, "resident memory grew by {grown} kB");
}
