//! Security headers, same-origin writes, CORS and the limits.

use serde_json::json;

use crate::helpers::{assert_error, spawn_app, spawn_app_with, TestApp};

async fn post_from(
    app: &TestApp,
    origin: Option<&str>,
    fetch_site: Option<&str>,
) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url("/api/rooms/general/messages"))
        .json(&json!({ "author": "ann", "text": "hi" }));
    if let Some(origin) = origin {
        request = request.header("Origin", origin);
    }
    if let Some(site) = fetch_site {
        request = request.header("Sec-Fetch-Site", site);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = spawn_app().await;
    for path in ["/", "/sw.js", "/api/rooms", "/api/nothing"] {
        let response = app.get(path).await;
        let csp = response.headers()["content-security-policy"]
            .to_str()
            .unwrap();
        assert!(
            csp.contains("script-src 'self' 'wasm-unsafe-eval'"),
            "{path}: {csp}"
        );
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(
            response.headers()["x-content-type-options"],
            "nosniff",
            "{path}"
        );
        assert_eq!(response.headers()["x-frame-options"], "DENY", "{path}");
    }
}

#[tokio::test]
async fn writes_from_another_origin_are_refused() {
    let app = spawn_app().await;
    assert_error(
        post_from(&app, Some("https://evil.example"), None).await,
        403,
        "cross_origin_write",
    )
    .await;
    assert_error(
        post_from(&app, None, Some("cross-site")).await,
        403,
        "cross_origin_write",
    )
    .await;
    assert!(
        app.recent_texts("general").await.is_empty(),
        "nothing was stored"
    );
    let own = app.base.clone();
    assert_eq!(
        post_from(&app, Some(&own), Some("same-origin"))
            .await
            .status(),
        201
    );
    assert_eq!(
        post_from(&app, None, None).await.status(),
        201,
        "non-browser clients pass"
    );
}

#[tokio::test]
async fn cors_is_off_unless_an_origin_is_allowed() {
    let preflight = |app: &TestApp, origin: &str| {
        app.client
            .request(
                reqwest::Method::OPTIONS,
                app.url("/api/rooms/general/messages"),
            )
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header("Access-Control-Request-Headers", "content-type")
            .send()
    };
    let closed = spawn_app().await;
    let response = preflight(&closed, "https://app.example").await.unwrap();
    assert!(!response
        .headers()
        .contains_key("access-control-allow-origin"));

    let open = spawn_app_with(|c| c.cors_origins = vec!["https://app.example".into()]).await;
    let allowed = preflight(&open, "https://app.example").await.unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    let other = preflight(&open, "https://evil.example").await.unwrap();
    assert!(!other.headers().contains_key("access-control-allow-origin"));
    assert_eq!(
        post_from(&open, Some("https://app.example"), Some("cross-site"))
            .await
            .status(),
        201
    );
    assert_eq!(
        post_from(&open, Some("https://evil.example"), None)
            .await
            .status(),
        403
    );
}

#[tokio::test]
async fn writes_over_the_rate_get_429_with_retry_after_and_change_nothing() {
    let app = spawn_app_with(|c| {
        c.write_rate_per_address = 1;
        c.write_burst = 2;
    })
    .await;
    assert_eq!(app.post_message("general", "ann", "1").await.status(), 201);
    assert_eq!(app.post_message("general", "ann", "2").await.status(), 201);
    let refused = app.post_message("general", "ann", "3").await;
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after), "retry after {retry_after}");
    assert_error(refused, 429, "rate_limited").await;
    assert_eq!(app.recent_texts("general").await, ["1", "2"]);
}

#[tokio::test]
async fn streams_over_the_cap_get_429_and_a_closed_one_frees_its_place() {
    let app = spawn_app_with(|c| c.max_streams_per_address = 2).await;
    let first = app.subscribe("topic=rooms/general", None).await;
    let _second = app.subscribe("topic=rooms/general", None).await;
    let refused = app.get("/api/events?topic=rooms/general").await;
    assert!(refused.headers().contains_key("retry-after"));
    assert_error(refused, 429, "too_many_streams").await;
    drop(first);
    crate::helpers::wait_until(std::time::Duration::from_secs(5), || {
        let hub = app.hub.clone();
        async move { hub.subscriber_count() == 1 }
    })
    .await;
    let again = app.get("/api/events?topic=rooms/general").await;
    assert_eq!(again.status(), 200);
}

#[tokio::test]
async fn a_signed_in_session_has_its_own_write_rate() {
    let app = spawn_app_with(|c| {
        c.write_rate_per_session = 1;
        c.session_write_burst = 2;
    })
    .await;
    let registered = app
        .client
        .post(app.url("/api/auth/register"))
        .json(&json!({ "name": "ann", "password": "correct horse battery" }))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201);
    let cookie = registered.headers()["set-cookie"].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let post = |text: &'static str, cookie: Option<String>| {
        let mut request = app
            .client
            .post(app.url("/api/rooms/general/messages"))
            .json(&json!({ "author": "ann", "text": text }));
        if let Some(cookie) = cookie {
            request = request.header("Cookie", cookie);
        }
        request.send()
    };
    assert_eq!(post("1", Some(cookie.clone())).await.unwrap().status(), 201);
    assert_eq!(post("2", Some(cookie.clone())).await.unwrap().status(), 201);
    let refused = post("3", Some(cookie)).await.unwrap();
    assert!(refused.headers().contains_key("retry-after"));
    assert_error(refused, 429, "rate_limited").await;
    assert_eq!(
        post("4", None).await.unwrap().status(),
        201,
        "other clients are not slowed"
    );
    assert_eq!(app.recent_texts("general").await, ["1", "2", "4"]);
}
