//! Accounts: registration, sign-in, sign-out and the session cookie.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{assert_error, password_of, session_cookie, spawn_app, AsUser, TestApp};

async fn login(app: &TestApp, name: &str, password: &str) -> reqwest::Response {
    let body = json!({ "name": name, "password": password });
    app.send_as(Method::POST, "/api/auth/login", None, Some(body))
        .await
}

async fn me(app: &TestApp, cookie: Option<&str>) -> reqwest::Response {
    app.get_as("/api/auth/me", cookie).await
}

#[tokio::test]
async fn registering_signs_in_with_an_http_only_lax_cookie() {
    let app = spawn_app().await;
    let body = json!({ "name": "Ann Lee", "password": "correct horse battery" });
    let response = app
        .send_as(Method::POST, "/api/auth/register", None, Some(body))
        .await;
    assert_eq!(response.status(), 201);
    let set_cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    assert!(!set_cookie.contains("Secure"), "plain HTTP: {set_cookie}");
    let token = set_cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("nudge_session=");
    assert_eq!(token.len(), 43, "32 bytes, base64url: {token}");
    let cookie = session_cookie(&response);
    assert_eq!(response.json::<Value>().await.unwrap()["name"], "Ann Lee");

    let who = me(&app, Some(&cookie)).await;
    assert_eq!(who.status(), 200);
    assert_eq!(who.headers()["cache-control"], "no-store");
    assert_eq!(
        who.json::<Value>().await.unwrap(),
        json!({ "name": "Ann Lee" })
    );
    assert_error(me(&app, None).await, 401, "not_signed_in").await;
}

#[tokio::test]
async fn login_answers_unknown_users_and_wrong_passwords_alike() {
    let app = spawn_app().await;
    app.register("ann").await;
    let ok = login(&app, "ann", &password_of("ann")).await;
    assert_eq!(ok.status(), 200);
    let cookie = session_cookie(&ok);
    assert_eq!(me(&app, Some(&cookie)).await.status(), 200);

    let wrong = login(&app, "ann", "not her password").await;
    let unknown = login(&app, "nobody", &password_of("ann")).await;
    assert_eq!(wrong.status(), 401);
    assert_eq!(unknown.status(), 401);
    assert!(wrong.headers().get("set-cookie").is_none());
    let (wrong, unknown): (Value, Value) =
        (wrong.json().await.unwrap(), unknown.json().await.unwrap());
    assert_eq!(wrong["error"]["code"], "invalid_credentials");
    assert_eq!(wrong, unknown, "the same answer for both");
}

#[tokio::test]
async fn logout_clears_the_cookie_and_the_cache_and_ends_the_session() {
    let app = spawn_app().await;
    let cookie = app.register("ann").await;
    let out = app
        .send_as(Method::POST, "/api/auth/logout", Some(&cookie), None)
        .await;
    assert_eq!(out.status(), 204);
    assert_eq!(out.headers()["clear-site-data"], "\"cache\"");
    let cleared = out.headers()["set-cookie"].to_str().unwrap();
    assert!(cleared.starts_with("nudge_session=;"), "{cleared}");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    assert_error(me(&app, Some(&cookie)).await, 401, "not_signed_in").await;
    // Signing out twice, or while signed out, is not an error.
    let again = app
        .send_as(Method::POST, "/api/auth/logout", Some(&cookie), None)
        .await;
    assert_eq!(again.status(), 204);
}

#[tokio::test]
async fn bad_registrations_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    app.register("ann").await;
    let register = |body: Value| {
        let app = &app;
        async move {
            app.send_as(Method::POST, "/api/auth/register", None, Some(body))
                .await
        }
    };
    let cases = [
        (
            json!({ "name": "bob", "password": "short" }),
            400,
            "password_too_short",
        ),
        (
            json!({ "name": "bob", "password": "x".repeat(257) }),
            400,
            "password_too_long",
        ),
        (
            json!({ "name": " ", "password": "long enough" }),
            400,
            "empty_name",
        ),
        (
            json!({ "name": "b".repeat(65), "password": "long enough" }),
            400,
            "name_too_long",
        ),
        (json!({ "name": "bob" }), 400, "invalid_json"),
        (
            json!({ "name": "ann", "password": "another lantern entirely" }),
            409,
            "name_taken",
        ),
    ];
    for (body, status, code) in cases {
        assert_error(register(body).await, status, code).await;
    }
    let malformed = app
        .post_raw("/api/auth/register", "application/json", "{\"name\":")
        .await;
    assert_error(malformed, 400, "invalid_json").await;

    // Nothing changed: ann keeps her password, bob does not exist.
    assert_eq!(login(&app, "ann", &password_of("ann")).await.status(), 200);
    assert_eq!(
        login(&app, "ann", "another lantern entirely")
            .await
            .status(),
        401
    );
    assert_eq!(login(&app, "bob", "short").await.status(), 401);
    assert_eq!(login(&app, "bob", "long enough").await.status(), 401);
}

#[tokio::test]
async fn a_forged_or_malformed_cookie_signs_nobody_in() {
    let app = spawn_app().await;
    app.register("ann").await;
    let forged = format!("nudge_session={}", "A".repeat(43));
    for cookie in [forged.as_str(), "nudge_session=garbage", "other=1"] {
        assert_error(me(&app, Some(cookie)).await, 401, "not_signed_in").await;
    }
}
