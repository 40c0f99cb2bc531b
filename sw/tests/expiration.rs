//! Expiration against the real Cache API: by count, by age, by bytes, and on quota errors.
#![cfg(target_arch = "wasm32")]

mod common;

use std::cell::Cell;

use common::*;
use nudge_sw::error::{Result, SwError};
use nudge_sw::expiration::{self, meta, Expiration, SIZE, STORED_AT};
use nudge_sw::strategy::{LocalBoxFuture, NetworkFirst, Strategy};
use nudge_sw::web;
use wasm_bindgen_test::*;
use web_sys::{Cache, Request, Response};

wasm_bindgen_test_configure!(run_in_service_worker);

fn names(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| format!("/r/{name}")).collect()
}

/// Stores `body` under `url` as if it had been stored `age_ms` ago.
async fn store_aged(cache: &str, url: &str, age_ms: u64) {
    let headers = web_sys::Headers::new().unwrap();
    let stored_at = web::now_ms() as u64 - age_ms;
    headers.set(STORED_AT, &stored_at.to_string()).unwrap();
    headers.set(SIZE, "3").unwrap();
    let init = web_sys::RequestInit::new();
    init.set_headers(&headers);
    let key = Request::new_with_str_and_init(url, &init).unwrap();
    let response = Response::new_with_opt_str(Some("old")).unwrap();
    let cache = web::open_cache(cache).await.unwrap();
    web::cache_put_request(&cache, &key, &response)
        .await
        .unwrap();
}

#[wasm_bindgen_test]
async fn the_oldest_entries_go_beyond_the_max_count() {
    let strategy = NetworkFirst::new("t-exp-count").expiration(Expiration {
        max_entries: Some(2),
        ..Expiration::NONE
    });
    for name in ["count-a", "count-b", "count-c"] {
        let response = strategy
            .handle(get(&fixture(name, "")), None)
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    assert_eq!(paths("t-exp-count").await, names(&["count-b", "count-c"]));
}

#[wasm_bindgen_test]
async fn entries_older_than_the_max_age_go() {
    store_aged("t-exp-age", &fixture("age-old", ""), 2 * 3_600_000).await;
    store_aged("t-exp-age", &fixture("age-recent", ""), 60_000).await;
    let strategy = NetworkFirst::new("t-exp-age").expiration(Expiration {
        max_age_ms: Some(3_600_000),
        ..Expiration::NONE
    });
    strategy
        .handle(get(&fixture("age-new", "")), None)
        .await
        .unwrap();
    assert_eq!(paths("t-exp-age").await, names(&["age-recent", "age-new"]));
}

#[wasm_bindgen_test]
async fn the_byte_budget_drops_the_oldest_until_it_fits() {
    let strategy = NetworkFirst::new("t-exp-bytes").expiration(Expiration {
        max_bytes: Some(250),
        ..Expiration::NONE
    });
    for name in ["bytes-a", "bytes-b", "bytes-c"] {
        let response = strategy
            .handle(get(&fixture(name, "size=100")), None)
            .await
            .unwrap();
        assert_eq!(
            text(&response).await.len(),
            100,
            "the page gets the whole body"
        );
    }
    assert_eq!(paths("t-exp-bytes").await, names(&["bytes-b", "bytes-c"]));
    let cache = web::open_cache("t-exp-bytes").await.unwrap();
    let sizes: Vec<u64> = web::cache_keys(&cache)
        .await
        .unwrap()
        .iter()
        .map(|key| meta(key).size)
        .collect();
    assert_eq!(sizes, vec![100, 100]);
}

thread_local! {
    /// How many puts the stand-in below still refuses.
    static REFUSALS: Cell<u32> = const { Cell::new(0) };
}

/// A `Cache.put` that throws `QuotaExceededError` while [`REFUSALS`] lasts.
fn full_disk_put(cache: &Cache, key: &Request, response: &Response) -> LocalBoxFuture<Result<()>> {
    let refuse = REFUSALS.with(|left| {
        let refuse = left.get() > 0;
        left.set(left.get().saturating_sub(1));
        refuse
    });
    let (cache, key, response) = (cache.clone(), Clone::clone(key), Clone::clone(response));
    Box::pin(async move {
        if refuse {
            return Err(SwError {
                name: "QuotaExceededError".into(),
                message: "the disk is full".into(),
            });
        }
        web::cache_put_request(&cache, &key, &response).await
    })
}

#[wasm_bindgen_test]
async fn a_quota_error_purges_the_oldest_and_retries_once() {
    for (name, age) in [
        ("quota-1", 4),
        ("quota-2", 3),
        ("quota-3", 2),
        ("quota-4", 1),
    ] {
        store_aged("t-exp-quota", &fixture(name, ""), age * 1000).await;
    }
    let cache = web::open_cache("t-exp-quota").await.unwrap();
    let put = |name: &str| {
        let key = get(&fixture(name, ""));
        let response = Response::new_with_opt_str(Some(name)).unwrap();
        let cache = cache.clone();
        async move {
            expiration::put_with(&cache, &key, &response, &Expiration::NONE, full_disk_put).await
        }
    };
    REFUSALS.with(|left| left.set(1));
    assert_eq!(put("quota-new").await, Ok(true), "stored on the retry");
    assert_eq!(
        paths("t-exp-quota").await,
        names(&["quota-3", "quota-4", "quota-new"])
    );
    REFUSALS.with(|left| left.set(2));
    assert_eq!(
        put("quota-lost").await,
        Ok(false),
        "given up, without an error"
    );
    assert!(stored("t-exp-quota", &fixture("quota-lost", ""))
        .await
        .is_none());
}
