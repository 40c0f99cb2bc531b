//! Accounts and private rooms across nodes: a session opened on one node is valid on another,
//! and a membership change made on one node is what another node reads and delivers by.

use std::time::Duration;

use reqwest::{Method, Response};
use serde_json::{json, Value};

use crate::node::Node;
use crate::pg::Cluster;
use crate::sse_client::SseClient;

async fn send(
    node: &Node,
    method: Method,
    path: &str,
    cookie: Option<&str>,
    body: Option<Value>,
) -> Response {
    let mut request = node.client.request(method, node.url(path));
    if let Some(cookie) = cookie {
        request = request.header(reqwest::header::COOKIE, cookie);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.expect("the node answers")
}

/// The `nudge_session=…` pair of a response's `Set-Cookie`.
fn session_cookie(response: &Response) -> String {
    let set_cookie = response.headers()[reqwest::header::SET_COOKIE]
        .to_str()
        .expect("an ASCII Set-Cookie");
    set_cookie.split(';').next().unwrap().to_owned()
}

/// The password [`register`] gives `name`: strong enough to be accepted.
fn password_of(name: &str) -> String {
    format!("quiet lantern meadow of {name}")
}

/// Registers `name` (password [`password_of`]) on `node`; returns its session cookie.
async fn register(node: &Node, name: &str) -> String {
    let body = json!({ "name": name, "password": password_of(name) });
    let response = send(node, Method::POST, "/api/auth/register", None, Some(body)).await;
    assert_eq!(response.status(), 201, "registering {name}");
    session_cookie(&response)
}

async fn status(node: &Node, path: &str, cookie: Option<&str>) -> u16 {
    send(node, Method::GET, path, cookie, None)
        .await
        .status()
        .as_u16()
}

/// Polls until `path` on `node` answers `cookie` with `wanted`: another node's follower
/// applies a change a moment after the commit.
async fn until_status(node: &Node, path: &str, cookie: &str, wanted: u16) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let got = status(node, path, Some(cookie)).await;
        if got == wanted {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "GET {path}: {got}, not {wanted} within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// ann creates the private room `secret` on `a` and adds bob; both are registered on `a`.
async fn secret_of_ann_and_bob(a: &Node) -> (String, String) {
    let (ann, bob) = (register(a, "ann").await, register(a, "bob").await);
    let created = send(
        a,
        Method::PUT,
        "/api/rooms/secret",
        Some(&ann),
        Some(json!({ "private": true })),
    )
    .await;
    assert_eq!(created.status(), 201);
    let added = send(
        a,
        Method::PUT,
        // Any case of the name finds the account.
        "/api/rooms/secret/members/BOB",
        Some(&ann),
        None,
    )
    .await;
    assert_eq!(added.status(), 204);
    (ann, bob)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_opened_on_one_node_is_valid_on_another() {
    let url = Cluster::shared().fresh_database();
    let (a, b) = (Node::start(&url), Node::start(&url));
    let ann = register(&a, "ann").await;
    let me = send(&b, Method::GET, "/api/auth/me", Some(&ann), None).await;
    assert_eq!(me.status(), 200);
    assert_eq!(me.json::<Value>().await.unwrap(), json!({ "name": "ann" }));

    // Names are one account whatever their case or width, on every node.
    for name in ["ann", " ANN ", "Ａｎｎ"] {
        let taken = json!({ "name": name, "password": "another lantern entirely" });
        let again = send(&b, Method::POST, "/api/auth/register", None, Some(taken)).await;
        assert_eq!(again.status(), 409, "{name:?} is taken on every node");
    }
    let credentials = json!({ "name": "Ann", "password": password_of("ann") });
    let login = send(&b, Method::POST, "/api/auth/login", None, Some(credentials)).await;
    assert_eq!(login.status(), 200);
    let signed_in: Value = login.json().await.unwrap();
    assert_eq!(signed_in["name"], "ann", "the name as registered");

    let out = send(&b, Method::POST, "/api/auth/logout", Some(&ann), None).await;
    assert_eq!(out.status(), 204);
    assert_eq!(status(&a, "/api/auth/me", Some(&ann)).await, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_room_made_on_one_node_is_for_members_only_on_another() {
    let url = Cluster::shared().fresh_database();
    let (a, b) = (Node::start(&url), Node::start(&url));
    let (ann, bob) = secret_of_ann_and_bob(&a).await;
    let carol = register(&b, "carol").await;
    let posted = send(
        &a,
        Method::POST,
        "/api/rooms/secret/messages",
        Some(&ann),
        Some(json!({ "author": "ann", "text": "members only" })),
    )
    .await;
    assert_eq!(posted.status(), 201);

    until_status(&b, "/api/rooms/secret/recent", &carol, 403).await;
    let refused = send(
        &b,
        Method::GET,
        "/api/rooms/secret/recent",
        Some(&carol),
        None,
    )
    .await;
    let refused: Value = refused.json().await.unwrap();
    assert_eq!(refused["error"]["code"], "forbidden");
    let stream = send(
        &b,
        Method::GET,
        "/api/events?topic=rooms/secret",
        Some(&carol),
        None,
    )
    .await;
    assert_eq!(stream.status(), 403);

    until_status(&b, "/api/rooms/secret/recent", &bob, 200).await;
    let recent = send(
        &b,
        Method::GET,
        "/api/rooms/secret/recent",
        Some(&bob),
        None,
    )
    .await;
    let recent: Value = recent.json().await.unwrap();
    assert_eq!(recent["messages"][0]["text"], "members only");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_removed_on_one_node_is_forbidden_on_a_stream_on_another() {
    let url = Cluster::shared().fresh_database();
    let (a, b) = (Node::start(&url), Node::start(&url));
    let (ann, bob) = secret_of_ann_and_bob(&a).await;
    let carol = register(&a, "carol").await;
    // b has applied the room (a stranger is refused) and then bob's membership.
    until_status(&b, "/api/rooms/secret/recent", &carol, 403).await;
    until_status(&b, "/api/rooms/secret/recent", &bob, 200).await;
    let response = send(
        &b,
        Method::GET,
        "/api/events?topic=rooms/secret&topic=rooms/general",
        Some(&bob),
        None,
    )
    .await;
    assert_eq!(response.status(), 200);
    let mut stream = SseClient::new(response);

    let post = |text: &'static str| {
        let body = json!({ "author": "ann", "text": text });
        send(
            &a,
            Method::POST,
            "/api/rooms/secret/messages",
            Some(&ann),
            Some(body),
        )
    };
    assert_eq!(post("still a member").await.status(), 201);
    let removed = send(
        &a,
        Method::DELETE,
        // Any case of the name finds the account.
        "/api/rooms/secret/members/BOB",
        Some(&ann),
        None,
    )
    .await;
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

    let out = send(&a, Method::POST, "/api/auth/logout", Some(&ann), None).await;
    assert_eq!(out.status(), 204);
    let body = json!({ "author": "bob", "text": "after ann signed out" });
    let posted = send(
        &a,
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
