//! Every bad input gets a clear 4xx with a JSON body, and changes nothing.

use serde_json::json;

use crate::helpers::{assert_error, spawn_app, spawn_app_with, TestApp};

const MESSAGES: &str = "/api/rooms/general/messages";

/// Runs `case`, then checks that the log and the room are exactly as before.
async fn changes_nothing(app: &TestApp, case: impl std::future::Future<Output = ()>) {
    let head = app.hub.head();
    let rooms = app.get_json("/api/rooms").await;
    let recent = app.get_json("/api/rooms/general/recent").await;
    case.await;
    assert_eq!(app.hub.head(), head, "no event was logged");
    assert_eq!(app.get_json("/api/rooms").await, rooms);
    assert_eq!(app.get_json("/api/rooms/general/recent").await, recent);
}

#[tokio::test]
async fn malformed_json_is_a_400() {
    let app = spawn_app().await;
    changes_nothing(&app, async {
        let response = app
            .post_raw(MESSAGES, "application/json", "{\"author\": \"a\", ")
            .await;
        assert_error(response, 400, "invalid_json").await;
        let response = app
            .post_raw(
                MESSAGES,
                "application/json",
                "{\"author\": 1, \"text\": \"x\"}",
            )
            .await;
        assert_error(response, 400, "invalid_json").await;
        // Well-formed, but a writer who is not signed in must say who they are.
        let response = app
            .post_raw(MESSAGES, "application/json", "{\"text\": \"x\"}")
            .await;
        assert_error(response, 400, "missing_author").await;
    })
    .await;
}

#[tokio::test]
async fn a_wrong_content_type_is_a_415() {
    let app = spawn_app().await;
    changes_nothing(&app, async {
        let body = json!({ "author": "a", "text": "x" }).to_string();
        let response = app.post_raw(MESSAGES, "text/plain", body).await;
        assert_error(response, 415, "unsupported_media_type").await;
    })
    .await;
}

#[tokio::test]
async fn an_oversized_body_is_a_413_at_the_configured_limit() {
    let app = spawn_app_with(|c| c.max_body_bytes = 1024).await;
    changes_nothing(&app, async {
        let body = json!({ "author": "a", "text": "x".repeat(1100) }).to_string();
        let response = app.post_raw(MESSAGES, "application/json", body).await;
        assert_error(response, 413, "body_too_large").await;
    })
    .await;
}

#[tokio::test]
async fn empty_blank_and_over_long_fields_are_400s() {
    let app = spawn_app().await;
    changes_nothing(&app, async {
        assert_error(
            app.post_message("general", "ann", "").await,
            400,
            "empty_text",
        )
        .await;
        assert_error(
            app.post_message("general", "ann", " \n ").await,
            400,
            "empty_text",
        )
        .await;
        assert_error(
            app.post_message("general", "", "x").await,
            400,
            "empty_author",
        )
        .await;
        let long = "é".repeat(2001);
        assert_error(
            app.post_message("general", "ann", &long).await,
            400,
            "text_too_long",
        )
        .await;
        let nul = "a\u{0}b";
        assert_error(
            app.post_message("general", "ann", nul).await,
            400,
            "text_control_character",
        )
        .await;
        let long_name = "a".repeat(65);
        assert_error(
            app.post_message("general", &long_name, "x").await,
            400,
            "author_too_long",
        )
        .await;
    })
    .await;
}

#[tokio::test]
async fn invalid_room_names_are_400s() {
    let app = spawn_app().await;
    changes_nothing(&app, async {
        for room in ["General", "-x", "a_b", "%20", &"a".repeat(65)] {
            let response = app.post_message(room, "ann", "x").await;
            assert_error(response, 400, "invalid_room").await;
            let put = app
                .client
                .put(app.url(&format!("/api/rooms/{room}")))
                .send()
                .await
                .unwrap();
            assert_error(put, 400, "invalid_room").await;
            assert_error(
                app.get(&format!("/api/rooms/{room}/recent")).await,
                400,
                "invalid_room",
            )
            .await;
        }
    })
    .await;
}

#[tokio::test]
async fn unknown_routes_are_404s_and_wrong_methods_405s() {
    let app = spawn_app().await;
    changes_nothing(&app, async {
        assert_error(app.get("/api/nothing/here").await, 404, "not_found").await;
        assert_error(app.get("/no-such-file.txt").await, 404, "not_found").await;
        let delete = app
            .client
            .delete(app.url("/api/rooms/general/recent"))
            .send()
            .await
            .unwrap();
        assert_error(delete, 405, "method_not_allowed").await;
        let put = app.client.put(app.url(MESSAGES)).send().await.unwrap();
        assert_error(put, 405, "method_not_allowed").await;
        let post = app
            .client
            .post(app.url("/api/events?topic=a"))
            .send()
            .await
            .unwrap();
        assert_error(post, 405, "method_not_allowed").await;
    })
    .await;
}

#[tokio::test]
async fn bad_page_queries_are_400s() {
    let app = spawn_app().await;
    changes_nothing(&app, async {
        for query in ["after=abc", "before=1.5", "limit=ten", "limit=-1", "what=1"] {
            let response = app.get(&format!("{MESSAGES}?{query}")).await;
            assert_error(response, 400, "invalid_query").await;
        }
        for query in ["limit=0", "limit=101"] {
            let response = app.get(&format!("{MESSAGES}?{query}")).await;
            assert_error(response, 400, "invalid_limit").await;
        }
        let response = app.get(&format!("{MESSAGES}?after=1&before=5")).await;
        assert_error(response, 400, "conflicting_cursor").await;
    })
    .await;
}

#[tokio::test]
async fn bad_event_stream_requests_are_400s() {
    let app = spawn_app().await;
    changes_nothing(&app, async {
        assert_error(app.get("/api/events").await, 400, "missing_topic").await;
        assert_error(app.get("/api/events?topic=").await, 400, "invalid_topic").await;
        assert_error(
            app.get("/api/events?topic=rooms*").await,
            400,
            "invalid_topic",
        )
        .await;
        assert_eq!(app.hub.subscriber_count(), 0);
    })
    .await;
}

#[tokio::test]
async fn bad_presence_announcements_are_400s() {
    let app = spawn_app().await;
    let path = "/api/rooms/general/presence";
    let response = app
        .post_raw(path, "application/json", "{\"name\": \"\"}")
        .await;
    assert_error(response, 400, "empty_name").await;
    let response = app.post_raw(path, "application/json", "[]").await;
    assert_error(response, 400, "invalid_json").await;
    let here = app.get_json(path).await;
    assert_eq!(here["here"], json!([]));
}

#[tokio::test]
async fn a_room_creation_body_has_the_configured_limit_and_a_json_413() {
    let app = spawn_app_with(|c| c.max_body_bytes = 1024).await;
    let put = |body: String| {
        app.client
            .put(app.url("/api/rooms/padded"))
            .header("Content-Type", "application/json")
            .body(body)
            .send()
    };
    changes_nothing(&app, async {
        // Valid JSON, only longer than the limit: refused for its size alone.
        let padded = format!("{{\"private\": false}}{}", " ".repeat(2000));
        assert_error(put(padded).await.unwrap(), 413, "body_too_large").await;
        // Far over the limit (and over actix-web's own default of 256 KiB).
        let huge = format!("{{\"private\": false}}{}", " ".repeat(300 * 1024));
        assert_error(put(huge).await.unwrap(), 413, "body_too_large").await;
    })
    .await;
    let fits = format!("{{\"private\": false}}{}", " ".repeat(500));
    assert_eq!(
        put(fits).await.unwrap().status(),
        201,
        "a body within the limit"
    );
}

#[tokio::test]
async fn static_file_refusals_are_json() {
    let app = spawn_app().await;
    changes_nothing(&app, async {
        // actix-files refuses hidden and parent segments with a 400 of its own.
        assert_error(app.get("/.env").await, 400, "bad_request").await;
        assert_error(app.get("/..%2fCargo.toml").await, 400, "bad_request").await;
        // …and methods other than GET and HEAD with a 405.
        let post = app.post_raw("/index.html", "text/plain", "x").await;
        assert_error(post, 405, "method_not_allowed").await;
    })
    .await;
}
