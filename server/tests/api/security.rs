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
    let what = "the closed stream's place is free";
    crate::wait::wait_until(std::time::Duration::from_secs(5), what, || {
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

/// A write with `Origin` and the forwarded headers a client may set at will.
async fn post_forwarded(app: &TestApp, origin: &str, forwarded: &[(&str, &str)]) -> u16 {
    let mut request = app
        .client
        .post(app.url("/api/rooms/general/messages"))
        .header("Origin", origin)
        .json(&json!({ "author": "ann", "text": "hi" }));
    for (name, value) in forwarded {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn forwarded_host_headers_count_only_from_a_trusted_proxy() {
    let evil = [
        ("X-Forwarded-Host", "evil.example"),
        ("X-Forwarded-Proto", "https"),
    ];
    let direct = spawn_app().await;
    assert_eq!(
        post_forwarded(&direct, "https://evil.example", &evil).await,
        403,
        "a client cannot name its own site as the server's"
    );
    assert_eq!(
        post_forwarded(
            &direct,
            "https://evil.example",
            &[("Forwarded", "host=evil.example;proto=https")]
        )
        .await,
        403
    );
    assert_eq!(post_forwarded(&direct, &direct.base, &[]).await, 201);

    let proxied = spawn_app_with(|c| c.trust_forwarded_for = true).await;
    let site = [
        ("X-Forwarded-Host", "chat.example"),
        ("X-Forwarded-Proto", "https"),
    ];
    assert_eq!(
        post_forwarded(&proxied, "https://chat.example", &site).await,
        201,
        "behind a trusted proxy its headers name the site"
    );
}

#[tokio::test]
async fn a_configured_public_origin_is_the_only_own_origin() {
    let app = spawn_app_with(|c| c.public_origin = vec!["https://chat.example".into()]).await;
    assert_eq!(post_forwarded(&app, "https://chat.example", &[]).await, 201);
    let host_derived = app.base.clone();
    assert_eq!(
        post_forwarded(&app, &host_derived, &[]).await,
        403,
        "the Host header no longer names the site"
    );
    let forged = [("X-Forwarded-Host", "evil.example")];
    assert_eq!(
        post_forwarded(&app, "http://evil.example", &forged).await,
        403
    );
}

#[tokio::test]
async fn ipv6_clients_are_limited_per_64() {
    let app = spawn_app_with(|c| {
        c.trust_forwarded_for = true;
        c.write_rate_per_address = 1;
        c.write_burst = 1;
    })
    .await;
    let post_from = |ip: &'static str| {
        app.client
            .post(app.url("/api/rooms/general/messages"))
            .header("X-Forwarded-For", ip)
            .json(&json!({ "author": "ann", "text": ip }))
            .send()
    };
    assert_eq!(post_from("2001:db8:0:1::1").await.unwrap().status(), 201);
    let same_64 = post_from("2001:db8:0:1:ffff:ffff:ffff:ffff").await.unwrap();
    assert_error(same_64, 429, "rate_limited").await;
    assert_eq!(
        post_from("2001:db8:0:2::1").await.unwrap().status(),
        201,
        "the next /64 is another client"
    );
}

#[tokio::test]
async fn the_connection_log_is_served_to_direct_local_clients_only() {
    let app = spawn_app_with(|c| c.connection_log = 8).await;
    assert_eq!(app.get("/debug/connections").await.status(), 200);
    for header in ["X-Forwarded-For", "Forwarded", "X-Real-IP"] {
        let proxied = app
            .client
            .get(app.url("/debug/connections"))
            .header(header, "for=203.0.113.9")
            .send()
            .await
            .unwrap();
        assert_error(proxied, 403, "local_only").await;
    }
}

#[tokio::test]
async fn a_refused_preflight_is_a_json_400_with_the_security_headers() {
    let app = spawn_app_with(|c| c.cors_origins = vec!["https://app.example".into()]).await;
    let refused = app
        .client
        .request(
            reqwest::Method::OPTIONS,
            app.url("/api/rooms/general/messages"),
        )
        .header("Origin", "https://app.example")
        .header("Access-Control-Request-Method", "PATCH")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.headers()["x-frame-options"], "DENY");
    assert_error(refused, 400, "bad_request").await;
}
