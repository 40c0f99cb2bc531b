//! Web Push on many nodes: every node follows the log, but one sends, so each change is pushed
//! once, not once per node.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::node::Node;
use crate::pg::Cluster;
use crate::wait::wait_until;

/// The `Topic` header nudge sends for `topic` (see `nudge::push::send::topic_header`).
fn topic_header(topic: &str) -> String {
    URL_SAFE_NO_PAD.encode(&Sha256::digest(topic.as_bytes())[..18])
}

/// The generator of P-256, uncompressed: a valid public key for a browser that never reads
/// what it is sent (this test counts pushes; the core's tests decrypt them).
const P256_G: &str = "046B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296\
                      4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5";

/// A push service that counts the pushes it receives by `Topic`.
async fn push_service() -> (String, Arc<Mutex<HashMap<String, usize>>>) {
    let topics: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let state = topics.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = actix_web::HttpServer::new(move || {
        let state = state.clone();
        actix_web::App::new().default_service(web::to(move |req: HttpRequest| {
            let state = state.clone();
            async move {
                let topic = req
                    .headers()
                    .get("topic")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                *state.lock().unwrap().entry(topic).or_default() += 1;
                HttpResponse::Created().finish()
            }
        }))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    (format!("http://{addr}/push/1"), topics)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_change_is_pushed_once_whatever_the_nodes() {
    let url = Cluster::shared().fresh_database();
    let key_dir = tempfile::tempdir().unwrap();
    let key = key_dir.path().join("vapid.pem");
    let key = key.to_str().unwrap();
    let flags = [
        "--push-contact",
        "mailto:test@example.com",
        "--push-key-file",
        key,
        "--push-allow-local-http",
    ];
    let a = Node::start_with(&url, &flags);
    let b = Node::start_with(&url, &flags);
    let (endpoint, received) = push_service().await;
    let p256dh = URL_SAFE_NO_PAD.encode(
        (0..P256_G.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&P256_G[i..i + 2], 16).unwrap())
            .collect::<Vec<u8>>(),
    );
    let subscription = json!({
        "subscription": {
            "endpoint": endpoint,
            "keys": { "p256dh": p256dh, "auth": URL_SAFE_NO_PAD.encode([9u8; 16]) },
        },
        "topics": ["rooms/*"],
    });
    let subscribed = a
        .client
        .post(a.url("/api/push/subscriptions"))
        .json(&subscription)
        .send()
        .await
        .unwrap();
    assert_eq!(subscribed.status(), 201);
    let count = |topic: &str| {
        received
            .lock()
            .unwrap()
            .get(&topic_header(topic))
            .copied()
            .unwrap_or(0)
    };

    // A node claims the sending when it starts: until then a change may go unpushed.
    wait_until(Duration::from_secs(20), "a node sends pushes", || async {
        assert_eq!(a.post("warm-up", "hello", None).await.status(), 201);
        count("rooms/warm-up") > 0
    })
    .await;

    // Changes committed on either node, each in a room of its own (a topic of its own).
    let rooms = ["one", "two", "three", "four"];
    for (i, room) in rooms.iter().enumerate() {
        let node = if i % 2 == 0 { &a } else { &b };
        assert_eq!(node.post(room, "hi", None).await.status(), 201);
    }
    assert_eq!(b.post("marker", "last", None).await.status(), 201);
    wait_until(Duration::from_secs(15), "every room pushed", || async {
        rooms
            .iter()
            .chain(&["marker"])
            .all(|r| count(&format!("rooms/{r}")) > 0)
    })
    .await;
    for room in rooms.iter().chain(&["marker"]) {
        assert_eq!(
            count(&format!("rooms/{room}")),
            1,
            "rooms/{room} pushed once"
        );
    }
}
