//! Who is who: names are one account whatever their case, width or spacing, and hide nothing;
//! weak passwords are refused; a signed-in writer writes under the account's name; every name
//! that registers can be used wherever a name is (the member path included).

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{assert_error, password_of, session_cookie, spawn_app, AsUser, TestApp};

async fn register(app: &TestApp, name: &str, password: &str) -> reqwest::Response {
    let body = json!({ "name": name, "password": password });
    app.send_as(Method::POST, "/api/auth/register", None, Some(body))
        .await
}

async fn login(app: &TestApp, name: &str, password: &str) -> reqwest::Response {
    let body = json!({ "name": name, "password": password });
    app.send_as(Method::POST, "/api/auth/login", None, Some(body))
        .await
}

/// `name` as one path segment: every byte but the unreserved ones percent-encoded, as the
/// page's `encodeURIComponent` does.
fn segment(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn names_differing_in_case_width_or_spacing_are_one_account() {
    let app = spawn_app().await;
    let created = register(&app, "  Ann   Lee ", &password_of("ann")).await;
    assert_eq!(created.status(), 201);
    let body: Value = created.json().await.unwrap();
    assert_eq!(body["name"], "Ann Lee", "kept in its normal form");

    for same in [
        "Ann Lee",
        "ann lee",
        "ANN LEE ",
        "Ａｎｎ Ｌｅｅ",
        "Ann\u{3000}Lee",
    ] {
        let again = register(&app, same, "another lantern entirely").await;
        assert_error(again, 409, "name_taken").await;
    }
    // Any form of the name signs in, as the account as registered.
    let signed_in = login(&app, "ANN  lee", &password_of("ann")).await;
    assert_eq!(signed_in.status(), 200);
    let cookie = session_cookie(&signed_in);
    assert_eq!(
        signed_in.json::<Value>().await.unwrap(),
        json!({ "name": "Ann Lee" })
    );
    let me: Value = app
        .get_as("/api/auth/me", Some(&cookie))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["name"], "Ann Lee");
}

#[tokio::test]
async fn names_that_hide_characters_are_refused_and_register_nothing() {
    let app = spawn_app().await;
    app.register("ann").await;
    for (name, code) in [
        ("ann\u{202E}", "name_invisible_character"), // right-to-left override
        ("\u{2066}ann", "name_invisible_character"), // left-to-right isolate
        ("a\u{200B}nn", "name_invisible_character"), // zero-width space
        ("an\u{200D}n", "name_invisible_character"), // zero-width joiner
        ("ann\u{FEFF}", "name_invisible_character"), // zero-width no-break space
        ("ann\u{3164}", "name_invisible_character"), // Hangul filler
        ("an\u{7}n", "name_control_character"),
        (".", "invalid_name"),
        ("..", "invalid_name"),
    ] {
        let refused = register(&app, name, &password_of("x")).await;
        assert_error(refused, 400, code).await;
        // Nothing was registered: the same name with the trick gone is still free (or ann's).
        assert_eq!(
            login(&app, name, &password_of("x")).await.status(),
            401,
            "{name:?}"
        );
    }
}

#[tokio::test]
async fn common_passwords_are_refused() {
    let app = spawn_app().await;
    for password in [
        "12345678",
        "password",
        "qwertyui",
        "iloveyou1",
        "zoe-12345678",
    ] {
        let refused = register(&app, "zoe", password).await;
        assert_error(refused, 400, "password_too_weak").await;
    }
    assert_eq!(
        login(&app, "zoe", "12345678").await.status(),
        401,
        "nothing was registered"
    );
    assert_eq!(
        register(&app, "zoe", "correct horse battery")
            .await
            .status(),
        201
    );
}

#[tokio::test]
async fn a_signed_in_writer_writes_under_the_account_name() {
    let app = spawn_app().await;
    let ann = app.register("Ann").await;
    app.register("bob").await;
    let post = |body: Value, cookie: Option<String>| {
        let app = &app;
        async move {
            app.send_as(
                Method::POST,
                "/api/rooms/general/messages",
                cookie.as_deref(),
                Some(body),
            )
            .await
        }
    };

    // Another author, registered or not, is refused and stores nothing.
    for other in ["bob", "Zed", "Ann Other"] {
        let refused = post(
            json!({ "author": other, "text": "not me" }),
            Some(ann.clone()),
        )
        .await;
        assert_error(refused, 403, "author_not_account").await;
    }
    // No author, or the account's own name in any form: the account's name.
    for author in [None, Some("Ann"), Some(" ann "), Some("ＡＮＮ")] {
        let mut body = json!({ "text": "me" });
        if let Some(author) = author {
            body["author"] = json!(author);
        }
        let stored = post(body, Some(ann.clone())).await;
        assert_eq!(stored.status(), 201, "{author:?}");
        let stored: Value = stored.json().await.unwrap();
        assert_eq!(stored["author"], "Ann", "{author:?}");
    }
    // Signed out, a name is still needed, and it takes its normal form.
    let anonymous = post(json!({ "text": "who?" }), None).await;
    assert_error(anonymous, 400, "missing_author").await;
    let guest = post(json!({ "author": " Guest  Star ", "text": "hi" }), None).await;
    assert_eq!(guest.status(), 201);
    assert_eq!(guest.json::<Value>().await.unwrap()["author"], "Guest Star");
    let tricky = post(json!({ "author": "bob\u{202E}", "text": "hi" }), None).await;
    assert_error(tricky, 400, "author_invisible_character").await;

    let authors: Vec<Value> = app.get_json("/api/rooms/general/recent").await["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["author"].clone())
        .collect();
    assert_eq!(authors, ["Ann", "Ann", "Ann", "Ann", "Guest Star"]);
}

#[tokio::test]
async fn every_name_that_registers_can_be_made_a_member() {
    let app = spawn_app().await;
    let ann = app.register("ann").await;
    app.create_private("secret", &ann).await;
    for name in [
        "a/b", "100%", "x+y", "a?b#c", "Zoë Ann", "dot.", "..a", "%2F",
    ] {
        let cookie = app.register(name).await;
        let path = format!("/api/rooms/secret/members/{}", segment(name));
        let added = app.send_as(Method::PUT, &path, Some(&ann), None).await;
        assert_eq!(added.status(), 204, "adding {name:?} at {path}");
        let read = app.get_as("/api/rooms/secret/recent", Some(&cookie)).await;
        assert_eq!(read.status(), 200, "{name:?} reads the room");
        let removed = app.send_as(Method::DELETE, &path, Some(&ann), None).await;
        assert_eq!(removed.status(), 204, "removing {name:?}");
        let read = app.get_as("/api/rooms/secret/recent", Some(&cookie)).await;
        assert_eq!(read.status(), 403, "{name:?} no longer reads the room");
    }
    // Any form of a name finds its account, here too.
    let bob = app.register("bob").await;
    let added = app
        .send_as(
            Method::PUT,
            "/api/rooms/secret/members/%20BOB",
            Some(&ann),
            None,
        )
        .await;
    assert_eq!(added.status(), 204);
    assert_eq!(
        app.get_as("/api/rooms/secret/recent", Some(&bob))
            .await
            .status(),
        200
    );
}
