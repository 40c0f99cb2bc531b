//! Strategies against real HTTP (the fixture), real `Response`s and the real Cache API.
#![cfg(target_arch = "wasm32")]

mod common;

use common::*;
use nudge_sw::respond::OFFLINE_HEADER;
use nudge_sw::strategy::{CacheFirst, CacheOnly, NetworkFirst, StaleWhileRevalidate, Strategy};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_service_worker);

#[wasm_bindgen_test]
async fn a_200_get_is_stored() {
    let url = fixture("stored", "etag=%22s1%22&cc=no-cache");
    let response = NetworkFirst::new("t-stored")
        .handle(get(&url), None)
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        text(&response).await.contains("/r/stored"),
        "the page still gets the body"
    );
    let copy = stored("t-stored", &url).await.expect("a stored copy");
    assert_eq!(header(&copy, "ETag").as_deref(), Some("\"s1\""));
}

#[wasm_bindgen_test]
async fn a_no_store_response_is_not_stored() {
    let url = fixture("ephemeral", "cc=no-store");
    let response = NetworkFirst::new("t-ephemeral")
        .handle(get(&url), None)
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(stored("t-ephemeral", &url).await.is_none());
}

#[wasm_bindgen_test]
async fn a_post_is_not_stored() {
    let url = fixture("post", "");
    let response = NetworkFirst::new("t-post")
        .handle(with_method(&url, "POST"), None)
        .await;
    assert_eq!(response.unwrap().status(), 200);
    assert!(stored("t-post", &url).await.is_none());
    assert_eq!(stats("post").await.count, 1);
}

#[wasm_bindgen_test]
async fn an_error_is_passed_on_but_not_stored() {
    for (name, status) in [("error-500", 500), ("error-404", 404), ("partial", 206)] {
        let url = fixture(name, &format!("status={status}"));
        let response = NetworkFirst::new("t-errors")
            .handle(get(&url), None)
            .await
            .unwrap();
        assert_eq!(response.status(), status);
        assert!(
            stored("t-errors", &url).await.is_none(),
            "{status} must not be stored"
        );
    }
}

#[wasm_bindgen_test]
async fn offline_network_first_serves_the_stored_copy_marked() {
    let url = format!("{CLOSED}/api/rooms/general/recent");
    store("t-offline", &url, r#"{"messages":[]}"#, "\"7\"").await;
    let response = NetworkFirst::new("t-offline")
        .handle(get(&url), None)
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, OFFLINE_HEADER).as_deref(),
        Some("offline")
    );
    assert_eq!(
        header(&response, "ETag").as_deref(),
        Some("\"7\""),
        "headers are copied"
    );
    assert_eq!(text(&response).await, r#"{"messages":[]}"#);
}

#[wasm_bindgen_test]
async fn offline_with_nothing_stored_is_a_network_error_or_a_503() {
    let url = format!("{CLOSED}/api/never-seen");
    let error = NetworkFirst::new("t-miss")
        .handle(get(&url), None)
        .await
        .unwrap_err();
    assert_eq!(
        error.name, "TypeError",
        "a network error, as without a SW: {error}"
    );
    let strategy = NetworkFirst::new("t-miss").miss_as_503();
    let response = strategy.handle(get(&url), None).await.unwrap();
    assert_eq!(response.status(), 503);
    assert!(text(&response).await.contains(r#""code":"offline""#));
}

#[wasm_bindgen_test]
async fn offline_navigation_falls_back_to_the_shell() {
    let shell = format!("{CLOSED}/");
    store("t-shell", &shell, "<!doctype html>shell", "\"s\"").await;
    let strategy = NetworkFirst::new("t-shell").read_only().fallback_to(&shell);
    let response = strategy
        .handle(get(&format!("{CLOSED}/rooms/x")), None)
        .await
        .unwrap();
    assert_eq!(text(&response).await, "<!doctype html>shell");
    assert_eq!(
        header(&response, OFFLINE_HEADER).as_deref(),
        Some("offline")
    );
}

#[wasm_bindgen_test]
async fn a_slow_network_loses_to_the_stored_copy_after_the_timeout() {
    let url = fixture("slow", "delay_ms=3000");
    store("t-slow", &url, "stored", "\"old\"").await;
    let strategy = NetworkFirst::new("t-slow").network_timeout(100);
    let response = strategy.handle(get(&url), None).await.unwrap();
    assert_eq!(text(&response).await, "stored");
    assert_eq!(
        header(&response, OFFLINE_HEADER).as_deref(),
        Some("offline")
    );
}

#[wasm_bindgen_test]
async fn cache_first_does_not_touch_the_network_when_stored() {
    let url = fixture("cache-first", "");
    let strategy = CacheFirst::new("t-cache-first");
    strategy.handle(get(&url), None).await.unwrap();
    let second = strategy.handle(get(&url), None).await.unwrap();
    assert_eq!(second.status(), 200);
    assert_eq!(stats("cache-first").await.count, 1);
}

#[wasm_bindgen_test]
async fn cache_only_answers_504_when_nothing_is_stored() {
    let url = fixture("cache-only", "");
    let response = CacheOnly::new("t-cache-only")
        .handle(get(&url), None)
        .await
        .unwrap();
    assert_eq!(response.status(), 504);
    store("t-cache-only", &url, "here", "\"1\"").await;
    let response = CacheOnly::new("t-cache-only")
        .handle(get(&url), None)
        .await
        .unwrap();
    assert_eq!(text(&response).await, "here");
    assert_eq!(stats("cache-only").await.count, 0, "never the network");
}

#[wasm_bindgen_test]
async fn stale_while_revalidate_serves_the_copy_and_refreshes_it_behind() {
    let url = fixture("swr", "cc=no-cache");
    let strategy = StaleWhileRevalidate::new("t-swr");
    let first = strategy.handle(get(&url), None).await.unwrap();
    assert!(
        text(&first).await.contains(r#""count":1"#),
        "a miss waits for the network"
    );
    let second = strategy.handle(get(&url), None).await.unwrap();
    assert!(
        text(&second).await.contains(r#""count":1"#),
        "the stored copy answers"
    );
    wait_until("the background refresh is stored", || async {
        match stored("t-swr", &url).await {
            Some(copy) => text(&copy).await.contains(r#""count":2"#),
            None => false,
        }
    })
    .await;
    assert_eq!(
        stats("swr").await.count,
        2,
        "one request per answer, no more"
    );
}
