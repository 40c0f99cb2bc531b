//! What keeps a crowd of sign-ins from taking the server down: a bounded number of password
//! hashes at once (503 with `Retry-After` past a short wait), and sign-in attempts throttled
//! per account name, from any number of addresses, and per address (429 with `Retry-After`).

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{assert_error, password_of, spawn_app_with, AsUser, TestApp};

async fn login_from(app: &TestApp, address: &str, name: &str, password: &str) -> reqwest::Response {
    app.client
        .post(app.url("/api/auth/login"))
        .header("X-Forwarded-For", address)
        .json(&json!({ "name": name, "password": password }))
        .send()
        .await
        .expect("the request is sent")
}

/// Asserts a JSON 429 with a `Retry-After` of at least a second.
async fn assert_throttled(response: reqwest::Response) {
    let retry_after: u64 = response
        .headers()
        .get("retry-after")
        .expect("a Retry-After header")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1, "Retry-After: {retry_after}");
    assert_error(response, 429, "too_many_sign_ins").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hashes_past_the_bound_and_the_wait_are_answered_503_with_retry_after() {
    // One hash at once and no wait at all: while one runs, every other is refused.
    let app = spawn_app_with(|c| {
        c.hash_concurrency = 1;
        c.hash_wait_ms = 0;
    })
    .await;
    let attempts = (0..40).map(|i| {
        let app = &app;
        async move {
            app.send_as(
                Method::POST,
                "/api/auth/login",
                None,
                Some(json!({ "name": format!("user{i}"), "password": "not the password" })),
            )
            .await
        }
    });
    let answers = futures_util::future::join_all(attempts).await;
    let mut busy = 0;
    for response in answers {
        match response.status().as_u16() {
            401 => {}
            503 => {
                busy += 1;
                assert_eq!(response.headers()["retry-after"], "1");
                assert_eq!(response.headers()["cache-control"], "no-store");
                assert_error(response, 503, "busy").await;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(
        busy > 0,
        "40 hashes at once, one at a time, and no wait: none was refused"
    );
}

#[tokio::test]
async fn failed_sign_ins_are_throttled_per_name_from_any_address() {
    let app = spawn_app_with(|c| {
        c.trust_forwarded_for = true;
        c.login_rate_per_name = 3;
    })
    .await;
    app.register("ann").await;
    for i in 0..3 {
        let wrong = login_from(&app, &format!("10.0.0.{i}"), "ann", "not her password").await;
        assert_eq!(wrong.status(), 401);
    }
    // The name is spent, in any case: even the right password from a fresh address waits.
    for name in ["ann", "ANN"] {
        let right = login_from(&app, "10.0.1.1", name, &password_of("ann")).await;
        assert_throttled(right).await;
    }
    // An unknown name is throttled the same way, so a 429 says nothing about who exists.
    for i in 0..3 {
        let unknown = login_from(&app, &format!("10.0.2.{i}"), "nobody", "x").await;
        assert_eq!(unknown.status(), 401);
    }
    assert_throttled(login_from(&app, "10.0.2.9", "nobody", "x").await).await;
    // Other accounts are not held back.
    app.register("bob").await;
    let bob = login_from(&app, "10.0.0.0", "bob", &password_of("bob")).await;
    assert_eq!(bob.status(), 200);
    let body: Value = bob.json().await.unwrap();
    assert_eq!(body["name"], "bob");
}

#[tokio::test]
async fn sign_ins_are_throttled_per_address_whatever_the_names() {
    let app = spawn_app_with(|c| {
        c.trust_forwarded_for = true;
        c.login_rate_per_address = 3;
    })
    .await;
    app.register("ann").await;
    for name in ["x", "y", "z"] {
        let wrong = login_from(&app, "10.0.0.1", name, "not the password").await;
        assert_eq!(wrong.status(), 401);
    }
    assert_throttled(login_from(&app, "10.0.0.1", "ann", &password_of("ann")).await).await;
    let elsewhere = login_from(&app, "10.0.0.2", "ann", &password_of("ann")).await;
    assert_eq!(elsewhere.status(), 200);
}
