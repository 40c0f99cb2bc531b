//! Private rooms: members only for reads, posts, presence and streams; hidden from the room
//! list of others; never delivered to others' prefix streams; revocation ends the topic.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{assert_error, spawn_app, AsUser, TestApp};
use crate::sse_client::SseEvent;

/// ann (owner of the private room `secret`) and bob (registered, not a member).
async fn ann_and_bob(app: &TestApp) -> (String, String) {
    let ann = app.register("ann").await;
    let bob = app.register("bob").await;
    app.create_private("secret", &ann).await;
    (ann, bob)
}

fn on(topic: &str) -> impl Fn(&SseEvent) -> bool + '_ {
    move |e| e.event == "changed" && e.json()["topic"] == topic
}

async fn every_room_use(
    app: &TestApp,
    cookie: Option<&str>,
) -> Vec<(&'static str, reqwest::Response)> {
    let presence = Some(json!({ "name": "someone" }));
    vec![
        (
            "recent",
            app.get_as("/api/rooms/secret/recent", cookie).await,
        ),
        (
            "page",
            app.get_as("/api/rooms/secret/messages?limit=5", cookie)
                .await,
        ),
        ("post", app.post_as("secret", cookie, "hello").await),
        (
            "presence",
            app.get_as("/api/rooms/secret/presence", cookie).await,
        ),
        (
            "announce",
            app.send_as(Method::POST, "/api/rooms/secret/presence", cookie, presence)
                .await,
        ),
        (
            "stream",
            app.open_stream_as("topic=rooms/secret", cookie).await,
        ),
        (
            "stream with a public topic too",
            app.open_stream_as("topic=rooms/general&topic=rooms/secret", cookie)
                .await,
        ),
    ]
}

#[tokio::test]
async fn non_members_are_refused_everything_and_members_may_do_all() {
    let app = spawn_app().await;
    let (ann, bob) = ann_and_bob(&app).await;
    for (what, response) in every_room_use(&app, None).await {
        assert_eq!(response.status(), 401, "signed out: {what}");
        assert_error(response, 401, "not_signed_in").await;
    }
    for (what, response) in every_room_use(&app, Some(&bob)).await {
        assert_eq!(response.status(), 403, "not a member: {what}");
        assert_error(response, 403, "forbidden").await;
    }
    for (what, response) in every_room_use(&app, Some(&ann)).await {
        assert!(response.status().is_success(), "member: {what}");
    }

    let added = app.member(Method::PUT, "secret", "bob", Some(&ann)).await;
    assert_eq!(added.status(), 204);
    for (what, response) in every_room_use(&app, Some(&bob)).await {
        assert!(response.status().is_success(), "new member: {what}");
    }
    let recent: Value = app
        .get_as("/api/rooms/secret/recent", Some(&bob))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(recent["messages"].as_array().unwrap().len(), 2, "{recent}");
}

#[tokio::test]
async fn private_reads_may_be_kept_by_private_caches_only() {
    let app = spawn_app().await;
    let (ann, _) = ann_and_bob(&app).await;
    app.post_as("secret", Some(&ann), "hi").await;
    for path in [
        "/api/rooms/secret/recent",
        "/api/rooms/secret/messages?after=0",
        "/api/rooms",
    ] {
        let response = app.get_as(path, Some(&ann)).await;
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(
            response.headers()["cache-control"],
            "private, no-cache",
            "{path}"
        );
        let etag = response.headers()["etag"].to_str().unwrap().to_owned();
        let again = app
            .client
            .get(app.url(path))
            .header("Cookie", &ann)
            .header("If-None-Match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "{path}");
    }
    let public = app.get("/api/rooms/general/recent").await;
    assert_eq!(
        public.headers()["cache-control"],
        "no-cache",
        "public rooms as before"
    );
}

async fn room_names(app: &TestApp, cookie: Option<&str>) -> (Vec<String>, String) {
    let response = app.get_as("/api/rooms", cookie).await;
    assert_eq!(response.status(), 200);
    let etag = response.headers()["etag"].to_str().unwrap().to_owned();
    let body: Value = response.json().await.unwrap();
    let names = body["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_owned())
        .collect();
    (names, etag)
}

#[tokio::test]
async fn the_room_list_shows_private_rooms_to_their_members_only() {
    let app = spawn_app().await;
    let (ann, bob) = ann_and_bob(&app).await;
    let (anyone, _) = room_names(&app, None).await;
    let (bobs, before) = room_names(&app, Some(&bob)).await;
    let (anns, _) = room_names(&app, Some(&ann)).await;
    assert_eq!(anyone, ["general"]);
    assert_eq!(bobs, ["general"]);
    assert_eq!(anns, ["general", "secret"]);

    let mut rooms = app.subscribe("topic=rooms", None).await;
    app.member(Method::PUT, "secret", "bob", Some(&ann)).await;
    let nudge = rooms.next_event().await.unwrap();
    assert_eq!(
        nudge.json()["url"],
        "/api/rooms",
        "membership changes nudge the list"
    );
    let (bobs, after) = room_names(&app, Some(&bob)).await;
    assert_eq!(bobs, ["general", "secret"]);
    assert_ne!(
        before, after,
        "the list's version moved with the membership"
    );
    // A signed-in caller's tag is the nudge's id followed by a part that depends on what
    // they see (see `room_list.rs`).
    assert!(
        after.starts_with(&format!("\"{}-", nudge.id())),
        "and carries the nudge's id: {after}"
    );
}

#[tokio::test]
async fn prefix_streams_and_replays_never_carry_others_private_rooms() {
    let app = spawn_app().await;
    let (ann, bob) = ann_and_bob(&app).await;
    let start = app.post_ok("general", "before").await["event_id"]
        .as_i64()
        .unwrap();
    let mut bobs = app.subscribe_as("topic=rooms/*", &bob).await;
    let mut anyones = app.subscribe("topic=rooms/*", None).await;
    let mut anns = app.subscribe_as("topic=rooms/*", &ann).await;

    assert_eq!(
        app.post_as("secret", Some(&ann), "private").await.status(),
        201
    );
    let presence = Some(json!({ "name": "ann" }));
    app.send_as(
        Method::POST,
        "/api/rooms/secret/presence",
        Some(&ann),
        presence,
    )
    .await;
    // A later public write marks the end: events arrive in commit order.
    app.post_ok("general", "marker").await;

    for stream in [&mut bobs, &mut anyones] {
        let seen = stream.events_until(on("rooms/general")).await;
        assert!(
            seen.iter().all(|e| e.json()["topic"] != "rooms/secret"),
            "{seen:?}"
        );
    }
    let seen = anns.events_until(on("rooms/general")).await;
    let secret: Vec<Value> = seen
        .iter()
        .filter(|e| e.json()["topic"] == "rooms/secret")
        .map(SseEvent::json)
        .collect();
    assert_eq!(secret.len(), 2, "the message and the presence: {seen:?}");
    for data in &secret {
        let mut keys: Vec<_> = data.as_object().unwrap().keys().cloned().collect();
        keys.retain(|k| k != "etag" && k != "ephemeral");
        assert_eq!(keys, ["topic", "url"], "a nudge carries no content: {data}");
    }

    let response = app
        .client
        .get(app.url("/api/events?topic=rooms/*"))
        .header("Cookie", &bob)
        .header("Last-Event-ID", start.to_string())
        .send()
        .await
        .unwrap();
    let mut replay = crate::sse_client::SseClient::new(response);
    let seen = replay.events_until(on("rooms/general")).await;
    assert!(
        seen.iter().all(|e| e.json()["topic"] != "rooms/secret"),
        "the replay filters the same way: {seen:?}"
    );
}

#[tokio::test]
async fn revoking_a_member_ends_the_topic_on_their_open_streams() {
    let app = spawn_app().await;
    let (ann, bob) = ann_and_bob(&app).await;
    app.member(Method::PUT, "secret", "bob", Some(&ann)).await;
    let mut both = app
        .subscribe_as("topic=rooms/secret&topic=rooms/general", &bob)
        .await;
    let mut prefix = app.subscribe_as("topic=rooms/*", &bob).await;
    let mut only_secret = app.subscribe_as("topic=rooms/secret", &bob).await;
    let mut anns = app.subscribe_as("topic=rooms/secret", &ann).await;

    app.post_as("secret", Some(&ann), "still a member").await;
    let removed = app
        .member(Method::DELETE, "secret", "bob", Some(&ann))
        .await;
    assert_eq!(removed.status(), 204);
    app.post_as("secret", Some(&ann), "after").await;
    app.post_ok("general", "marker").await;

    for stream in [&mut both, &mut prefix] {
        let seen = stream.events_until(on("rooms/general")).await;
        let kinds: Vec<_> = seen
            .iter()
            .map(|e| {
                (
                    e.event.as_str(),
                    e.json()["topic"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(
            kinds,
            [
                ("changed", "rooms/secret".to_owned()),
                ("forbidden", "rooms/secret".to_owned()),
                ("changed", "rooms/general".to_owned()),
            ],
            "one event from before, forbidden, then nothing more of it"
        );
        let forbidden = &seen[1];
        assert_eq!(forbidden.json(), json!({ "topic": "rooms/secret" }));
        assert!(!forbidden.has_id, "forbidden is not in the log");
    }
    let seen: Vec<_> = [
        only_secret.next_event().await.unwrap(),
        only_secret.next_event().await.unwrap(),
    ]
    .into_iter()
    .map(|e| e.event)
    .collect();
    assert_eq!(seen, ["changed", "forbidden"]);
    assert!(
        only_secret.next_event().await.is_none(),
        "a stream with no topic left ends"
    );
    let ann_seen = anns
        .events_until(|e| e.id() > 0 && e.json()["topic"] == "rooms/secret")
        .await;
    assert_eq!(ann_seen.len(), 1, "members are untouched");
    let next = anns.next_event().await.unwrap();
    assert_eq!(next.event, "changed", "ann still gets the room: {next:?}");

    assert_error(
        app.get_as("/api/rooms/secret/recent", Some(&bob)).await,
        403,
        "forbidden",
    )
    .await;
}

#[tokio::test]
async fn membership_and_private_creation_are_checked() {
    let app = spawn_app().await;
    let (ann, bob) = ann_and_bob(&app).await;
    let carol = app.register("carol").await;
    let put = Method::PUT;
    let cases = [
        (
            app.member(put.clone(), "secret", "nobody", Some(&ann))
                .await,
            404,
            "user_not_found",
        ),
        (
            app.member(put.clone(), "secret", "carol", Some(&bob)).await,
            403,
            "forbidden",
        ),
        (
            app.member(put.clone(), "secret", "carol", None).await,
            401,
            "not_signed_in",
        ),
        (
            app.member(put.clone(), "general", "carol", Some(&ann))
                .await,
            409,
            "room_is_public",
        ),
        (
            app.member(put.clone(), "nowhere", "carol", Some(&ann))
                .await,
            404,
            "room_not_found",
        ),
        (
            app.member(Method::DELETE, "secret", "ann", Some(&bob))
                .await,
            403,
            "forbidden",
        ),
        (
            app.member(Method::PATCH, "secret", "bob", Some(&ann)).await,
            405,
            "method_not_allowed",
        ),
    ];
    for (response, status, code) in cases {
        assert_error(response, status, code).await;
    }

    let private = Some(json!({ "private": true }));
    let create = |path: &'static str, cookie: Option<String>, body: Option<Value>| {
        let app = &app;
        async move {
            app.send_as(Method::PUT, path, cookie.as_deref(), body)
                .await
        }
    };
    let refusals = [
        (
            create("/api/rooms/general", Some(ann.clone()), private.clone()).await,
            409,
            "room_exists",
        ),
        (
            create("/api/rooms/secret", Some(bob.clone()), private.clone()).await,
            409,
            "room_exists",
        ),
        (
            create("/api/rooms/other", None, private.clone()).await,
            401,
            "not_signed_in",
        ),
        (
            create(
                "/api/rooms/other",
                Some(ann.clone()),
                Some(json!({ "private": "yes" })),
            )
            .await,
            400,
            "invalid_json",
        ),
        (
            create("/api/rooms/secret", Some(carol.clone()), None).await,
            403,
            "forbidden",
        ),
        (
            create("/api/rooms/secret", None, None).await,
            401,
            "not_signed_in",
        ),
    ];
    for (response, status, code) in refusals {
        assert_error(response, status, code).await;
    }
    assert_eq!(
        create("/api/rooms/secret", Some(ann.clone()), private.clone())
            .await
            .status(),
        200
    );
    assert_eq!(
        create("/api/rooms/secret", Some(ann.clone()), None)
            .await
            .status(),
        200
    );
    assert_eq!(
        create("/api/rooms/open", None, None).await.status(),
        201,
        "public as before"
    );
    assert_eq!(
        app.get("/api/rooms/other/recent").await.status(),
        404,
        "nothing was created"
    );

    // A member adds, and anyone may leave.
    let add = app.member(Method::PUT, "secret", "carol", Some(&ann)).await;
    assert_eq!(add.status(), 204);
    let again = app.member(Method::PUT, "secret", "carol", Some(&ann)).await;
    assert_eq!(again.status(), 204, "adding twice is fine");
    let leave = app
        .member(Method::DELETE, "secret", "carol", Some(&carol))
        .await;
    assert_eq!(leave.status(), 204);
    assert_error(
        app.get_as("/api/rooms/secret/recent", Some(&carol)).await,
        403,
        "forbidden",
    )
    .await;
}
