//! The room list and room creation: validators that depend on who asks (the list's body does),
//! pages, and limits on how fast one address or account may create rooms.

use reqwest::header::{CACHE_CONTROL, ETAG, IF_NONE_MATCH, RETRY_AFTER};
use reqwest::{Method, Response};
use serde_json::{json, Value};

use crate::helpers::{assert_error, spawn_app, spawn_app_with, AsUser, TestApp};

/// `GET path` as `cookie` (or nobody), with `If-None-Match: etag` when given.
async fn get_if(app: &TestApp, path: &str, cookie: Option<&str>, etag: Option<&str>) -> Response {
    let mut request = app.client.get(app.url(path));
    if let Some(cookie) = cookie {
        request = request.header(reqwest::header::COOKIE, cookie);
    }
    if let Some(etag) = etag {
        request = request.header(IF_NONE_MATCH, etag);
    }
    request.send().await.expect("the request is sent")
}

fn etag(response: &Response) -> String {
    response.headers()[ETAG].to_str().unwrap().to_owned()
}

fn names(list: &Value) -> Vec<String> {
    list["rooms"]
        .as_array()
        .expect("rooms")
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_owned())
        .collect()
}

async fn put_room(app: &TestApp, room: &str, cookie: Option<&str>) -> Response {
    app.send_as(Method::PUT, &format!("/api/rooms/{room}"), cookie, None)
        .await
}

#[tokio::test]
async fn the_room_lists_validator_depends_on_who_asks() {
    let app = spawn_app().await;
    let ann = app.register("ann").await;
    let bob = app.register("bob").await;
    app.create_private("secret", &ann).await;

    let anns = get_if(&app, "/api/rooms", Some(&ann), None).await;
    assert_eq!(anns.status(), 200);
    assert_eq!(anns.headers()[CACHE_CONTROL], "private, no-cache");
    let anns_tag = etag(&anns);
    assert!(names(&anns.json().await.unwrap()).contains(&"secret".to_owned()));

    // Someone else at the same browser, revalidating what ann's session stored: a full
    // answer without her private room, never a 304 that would show hers.
    for (who, cookie) in [("nobody", None), ("bob", Some(bob.as_str()))] {
        let other = get_if(&app, "/api/rooms", cookie, Some(&anns_tag)).await;
        assert_eq!(other.status(), 200, "{who} sending ann's ETag");
        assert_ne!(etag(&other), anns_tag, "{who}'s validator is not ann's");
        let list = other.json::<Value>().await.unwrap();
        assert!(
            !names(&list).contains(&"secret".to_owned()),
            "{who}: {list}"
        );
    }
    let again = get_if(&app, "/api/rooms", Some(&ann), Some(&anns_tag)).await;
    assert_eq!(again.status(), 304, "ann's own copy is still good");

    // Signing in changes the answer even though no room changed.
    let anonymous = get_if(&app, "/api/rooms", None, None).await;
    let anonymous_tag = etag(&anonymous);
    let signed_in = get_if(&app, "/api/rooms", Some(&ann), Some(&anonymous_tag)).await;
    assert_eq!(
        signed_in.status(),
        200,
        "ann just signed in: her rooms show"
    );
    assert!(names(&signed_in.json().await.unwrap()).contains(&"secret".to_owned()));
    let unchanged = get_if(&app, "/api/rooms", None, Some(&anonymous_tag)).await;
    assert_eq!(unchanged.status(), 304);
}

#[tokio::test]
async fn a_rooms_nudge_names_the_signed_out_lists_etag() {
    let app = spawn_app().await;
    let mut stream = app.subscribe("topic=rooms", None).await;
    assert_eq!(put_room(&app, "new-room", None).await.status(), 201);
    let nudge = stream.next_event().await.expect("a nudge");
    assert_eq!(nudge.json()["url"], "/api/rooms");
    let list = get_if(&app, "/api/rooms", None, None).await;
    assert_eq!(
        nudge.json()["etag"],
        etag(&list),
        "the SW may skip what it has"
    );
}

#[tokio::test]
async fn a_private_rooms_reads_refuse_other_people_sending_a_members_etag() {
    let app = spawn_app().await;
    let ann = app.register("ann").await;
    let bob = app.register("bob").await;
    app.create_private("secret", &ann).await;
    assert_eq!(
        app.post_as("secret", Some(&ann), "private").await.status(),
        201
    );
    for path in [
        "/api/rooms/secret/recent",
        "/api/rooms/secret/messages?limit=5",
    ] {
        let member = get_if(&app, path, Some(&ann), None).await;
        assert_eq!(member.status(), 200);
        assert_eq!(member.headers()[CACHE_CONTROL], "private, no-cache");
        let tag = etag(&member);
        let anonymous = get_if(&app, path, None, Some(&tag)).await;
        assert_error(anonymous, 401, "not_signed_in").await;
        let stranger = get_if(&app, path, Some(&bob), Some(&tag)).await;
        assert_error(stranger, 403, "forbidden").await;
        let wildcard = get_if(&app, path, Some(&bob), Some("*")).await;
        assert_error(wildcard, 403, "forbidden").await;
        assert_eq!(
            get_if(&app, path, Some(&ann), Some(&tag)).await.status(),
            304
        );
    }
    // Who one is is never cached.
    let me = get_if(&app, "/api/auth/me", Some(&ann), None).await;
    assert_eq!(me.headers()[CACHE_CONTROL], "no-store");
    assert!(!me.headers().contains_key(ETAG));
}

#[tokio::test]
async fn the_room_list_comes_in_pages() {
    let app = spawn_app().await;
    for i in 0..5 {
        assert_eq!(
            put_room(&app, &format!("room-{i}"), None).await.status(),
            201
        );
    }
    let mut seen = Vec::new();
    let mut next = Some("/api/rooms?limit=2".to_owned());
    let mut pages = 0;
    while let Some(path) = next {
        let page = app.get_json(&path).await;
        assert!(names(&page).len() <= 2, "{page}");
        seen.extend(names(&page));
        next = page["next"].as_str().map(str::to_owned);
        pages += 1;
    }
    assert_eq!(pages, 3);
    let mut all = vec!["general".to_owned()];
    all.extend((0..5).map(|i| format!("room-{i}")));
    assert_eq!(seen, all, "every room once, by name");
    for bad in ["limit=0", "limit=501", "limit=x", "colour=red"] {
        let response = app.get(&format!("/api/rooms?{bad}")).await;
        assert_eq!(response.status(), 400, "{bad}");
        let body: Value = response.json().await.unwrap();
        assert!(body["error"]["code"].is_string(), "{bad}: {body}");
    }
}

#[tokio::test]
async fn the_room_list_is_bounded_by_default() {
    let app = spawn_app().await;
    for i in 0..200 {
        assert_eq!(
            put_room(&app, &format!("r{i:03}"), None).await.status(),
            201
        );
    }
    let first = app.get_json("/api/rooms").await;
    assert_eq!(names(&first).len(), 200, "one page of 200");
    assert_eq!(first["next"], "/api/rooms?after=r198&limit=200");
    let rest = app.get_json("/api/rooms?after=r198&limit=200").await;
    assert_eq!(names(&rest), vec!["r199".to_owned()]);
    assert!(rest.get("next").is_none());
}

#[tokio::test]
async fn room_creation_is_limited_per_address() {
    let app = spawn_app_with(|c| {
        c.rooms_per_hour_per_address = 60;
        c.room_burst = 3;
    })
    .await;
    for i in 0..3 {
        assert_eq!(
            put_room(&app, &format!("room-{i}"), None).await.status(),
            201
        );
    }
    let refused = put_room(&app, "one-too-many", None).await;
    assert_eq!(refused.status(), 429);
    let retry: u64 = refused.headers()[RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "a new room per minute: {retry}");
    assert_error(refused, 429, "too_many_rooms").await;
    // A first message creates its room too, and is refused the same way.
    let posted = app.post_message("by-a-message", "ann", "hi").await;
    assert_error(posted, 429, "too_many_rooms").await;
    // What exists stays usable: joining a room or posting in it creates nothing.
    assert_eq!(put_room(&app, "room-0", None).await.status(), 200);
    assert_eq!(app.post_message("room-1", "ann", "hi").await.status(), 201);
    assert_eq!(app.post_message("general", "ann", "hi").await.status(), 201);
    let list = app.get_json("/api/rooms").await;
    assert_eq!(names(&list).len(), 4, "general and three: {list}");
}

#[tokio::test]
async fn room_creation_is_limited_per_account() {
    let app = spawn_app_with(|c| {
        c.rooms_per_hour_per_account = 60;
        c.room_burst = 2;
    })
    .await;
    let ann = app.register("ann").await;
    let bob = app.register("bob").await;
    app.create_private("ann-1", &ann).await;
    assert_eq!(put_room(&app, "ann-2", Some(&ann)).await.status(), 201);
    let private = Some(json!({ "private": true }));
    let refused = app
        .send_as(Method::PUT, "/api/rooms/ann-3", Some(&ann), private)
        .await;
    assert_error(refused, 429, "too_many_rooms").await;
    let refused = app.post_as("ann-4", Some(&ann), "hi").await;
    assert_error(refused, 429, "too_many_rooms").await;
    assert_eq!(
        put_room(&app, "bob-1", Some(&bob)).await.status(),
        201,
        "bob has his own"
    );
}
