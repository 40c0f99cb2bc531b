//! Accounts and private rooms across nodes: a session opened on one node is valid on another,
//! and a membership change made on one node is what another node reads and delivers by.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::accounts_common::{password_of, AsUser};
use crate::node::Node;
use crate::pg::Cluster;
use crate::sse_client::SseClient;
use crate::wait::wait_until;

async fn status(node: &Node, path: &str, cookie: Option<&str>) -> u16 {
    node.get_as(path, cookie).await.status().as_u16()
}

/// Polls until `path` on `node` answers `cookie` with `wanted`: another node's follower
/// applies a change a moment after the commit.
async fn until_status(node: &Node, path: &str, cookie: &str, wanted: u16) {
    let what = format!("GET {path} answering {wanted}");
    wait_until(Duration::from_secs(5), &what, || async {
        status(node, path, Some(cookie)).await == wanted
    })
    .await;
}

/// ann creates the private room `secret` on `a` and adds bob; both are registered on `a`.
async fn secret_of_ann_and_bob(a: &Node) -> (String, String) {
    let (ann, bob) = (a.register("ann").await, a.register("bob").await);
    a.create_private("secret", &ann).await;
    // Any case of the name finds the account.
    let added = a.member(Method::PUT, "secret", "BOB", Some(&ann)).await;
    assert_eq!(added.status(), 204);
    (ann, bob)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_opened_on_one_node_is_valid_on_another() {
    let url = Cluster::shared().fresh_database();
    let (a, b) = (Node::start(&url), Node::start(&url));
    let ann = a.register("ann").await;
    let me = b.get_as("/api/auth/me", Some(&ann)).await;
    assert_eq!(me.status(), 200);
    assert_eq!(me.json::<Value>().await.unwrap(), json!({ "name": "ann" }));

    // Names are one account whatever their case or width, on every node.
    for name in ["ann", " ANN ", "Ａｎｎ"] {
        let taken = json!({ "name": name, "password": "another lantern entirely" });
        let again = b
            .send_as(Method::POST, "/api/auth/register", None, Some(taken))
            .await;
        assert_eq!(again.status(), 409, "{name:?} is taken on every node");
    }
    let credentials = json!({ "name": "Ann", "password": password_of("ann") });
    let login = b
        .send_as(Method::POST, "/api/auth/login", None, Some(credentials))
        .await;
    assert_eq!(login.status(), 200);
    let signed_in: Value = login.json().await.unwrap();
    assert_eq!(signed_in["name"], "ann", "the name as registered");

    let out = b
        .send_as(Method::POST, "/api/auth/logout", Some(&ann), None)
        .await;
    assert_eq!(out.status(), 204);
    assert_eq!(status(&a, "/api/auth/me", Some(&ann)).await, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_room_made_on_one_node_is_for_members_only_on_another() {
    let url = Cluster::shared().fresh_database();
    let (a, b) = (Node::start(&url), Node::start(&url));
    let (ann, bob) = secret_of_ann_and_bob(&a).await;
    let carol = b.register("carol").await;
    let posted = a
        .send_as(
            Method::POST,
            "/api/rooms/secret/messages",
            Some(&ann),
            Some(json!({ "author": "ann", "text": "members only" })),
        )
        .await;
    assert_eq!(posted.status(), 201);

    until_status(&b, "/api/rooms/secret/recent", &carol, 403).await;
    let refused = b.get_as("/api/rooms/secret/recent", Some(&carol)).await;
    let refused: Value = refused.json().await.unwrap();
    assert_eq!(refused["error"]["code"], "forbidden");
    let stream = b
        .get_as("/api/events?topic=rooms/secret", Some(&carol))
        .await;
    assert_eq!(stream.status(), 403);

    until_status(&b, "/api/rooms/secret/recent", &bob, 200).await;
    let recent = b.get_as("/api/rooms/secret/recent", Some(&bob)).await;
    let recent: Value = recent.json().await.unwrap();
    assert_eq!(recent["messages"][0]["text"], "members only");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_removed_on_one_node_is_forbidden_on_a_stream_on_another() {
    let url = Cluster::shared().fresh_database();
    let (a, b) = (Node::start(&url), Node::start(&url));
    let (ann, bob) = secret_of_ann_and_bob(&a).await;
    let carol = a.register("carol").await;
    // b has applied the room (a stranger is refused) and then bob's membership.
    until_status(&b, "/api/rooms/secret/recent", &carol, 403).await;
    until_status(&b, "/api/rooms/secret/recent", &bob, 200).await;
    let response = b
        .get_as(
            "/api/events?topic=rooms/secret&topic=rooms/general",
            Some(&bob),
        )
        .await;
    assert_eq!(response.status(), 200);
    let mut stream = SseClient::new(response);

    let post = |text: &'static str| {
        let body = json!({ "author": "ann", "text": text });
        a.send_as(
            Method::POST,
            "/api/rooms/secret/messages",
            Some(&ann),
            Some(body),
        )
    };
    assert_eq!(post("still a member").await.status(), 201);
    // Any case of the name finds the account.
    let removed = a.member(Method::DELETE, "secret", "BOB", Some(&ann)).await;
    assert_eq!(removed.status(), 204);
    assert_eq!(post("after").await.status(), 201);
    assert_eq!(a.post("general", "marker", None).await.status(), 201);

    let seen = stream
        .events_until(|e| e.event == "changed" && e.json()["topic"] == "rooms/general")
        .await;
    let kinds: Vec<_> = seen
        .iter()
        .map(|e| {
            (
                e.event.clone(),
                e.json()["topic"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("changed", "rooms/secret"),
        ("forbidden", "rooms/secret"),
        ("changed", "rooms/general"),
    ]
    .map(|(e, t)| (e.to_owned(), t.to_owned()));
    assert_eq!(
        kinds, expected,
        "one event from before, forbidden, then nothing of it"
    );
    assert_eq!(
        status(&b, "/api/rooms/secret/recent", Some(&bob)).await,
        403
    );
    assert_eq!(
        status(&a, "/api/rooms/secret/recent", Some(&bob)).await,
        403
    );
}

/// Opens an event stream on `node` as `cookie`'s user, with a client that has no overall
/// timeout (the nodes' own client would end the stream after 10 s, as if the server had).
async fn stream_as(node: &Node, query: &str, cookie: &str) -> SseClient {
    let response = reqwest::Client::new()
        .get(node.url(&format!("/api/events?{query}")))
        .header(reqwest::header::COOKIE, cookie)
        .send()
        .await
        .expect("the stream request is sent");
    assert_eq!(response.status(), 200, "opening /api/events?{query}");
    SseClient::new(response)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_out_on_one_node_ends_the_sessions_streams_on_another() {
    let url = Cluster::shared().fresh_database();
    let (a, b) = (Node::start(&url), Node::start(&url));
    let (ann, bob) = secret_of_ann_and_bob(&a).await;
    until_status(&b, "/api/rooms/secret/recent", &ann, 200).await;
    let mut stream = stream_as(&b, "topic=rooms/secret", &ann).await;

    let out = a
        .send_as(Method::POST, "/api/auth/logout", Some(&ann), None)
        .await;
    assert_eq!(out.status(), 204);
    let body = json!({ "author": "bob", "text": "after ann signed out" });
    let posted = a
        .send_as(
            Method::POST,
            "/api/rooms/secret/messages",
            Some(&bob),
            Some(body),
        )
        .await;
    assert_eq!(posted.status(), 201);

    // b heard of the sign-out: the stream ends, without the nudge that followed it.
    let read = async {
        while let Some(event) = stream.next_event().await {
            assert_ne!(event.event, "changed", "after the sign-out: {}", event.data);
        }
    };
    tokio::time::timeout(Duration::from_secs(8), read)
        .await
        .expect("the stream on the other node ended within 8 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_out_missed_while_a_node_was_not_listening_ends_its_streams_on_reconnecting() {
    let url = Cluster::shared().fresh_database();
    let (a, b) = (Node::start(&url), Node::start(&url));
    let (ann, _bob) = secret_of_ann_and_bob(&a).await;
    until_status(&b, "/api/rooms/secret/recent", &ann, 200).await;
    let mut stream = stream_as(&b, "topic=rooms/secret", &ann).await;

    // The session goes without a notification (as if the node missed it), then the nodes'
    // listening connections are cut: reconnecting, they must find out for themselves.
    let (db, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("the test connects to the database");
    tokio::spawn(connection);
    db.execute("DELETE FROM sessions", &[]).await.unwrap();
    let cut = db
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid() \
             AND (query LIKE 'LISTEN%' OR query LIKE 'SELECT id, topic, url, note FROM events%')",
            &[],
        )
        .await
        .unwrap();
    assert!(cut >= 2, "both followers' connections were cut ({cut})");

    let read = async { while stream.next_event().await.is_some() {} };
    tokio::time::timeout(Duration::from_secs(8), read)
        .await
        .expect("the stream ended within 8 s of the follower's reconnection");
}
