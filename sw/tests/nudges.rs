//! Revalidation from nudges and precaching, counted at the fixture.
#![cfg(target_arch = "wasm32")]

mod common;

use std::cell::RefCell;

use common::*;
use js_sys::Promise;
use nudge_sw::nudge::nudge;
use nudge_sw::precache::{self, Entry, Manifest};
use nudge_sw::store::Store;
use nudge_sw::web;
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_service_worker);

thread_local! {
    static UPDATED: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// Stands in for the broadcast to the tabs, remembering what it was told.
fn record(url: &str) -> Promise {
    UPDATED.with(|updated| updated.borrow_mut().push(url.to_owned()));
    Promise::resolve(&JsValue::UNDEFINED)
}

fn updates_for(url: &str) -> usize {
    UPDATED.with(|updated| updated.borrow().iter().filter(|u| *u == url).count())
}

async fn nudged(cache: &str, url: &str, etag: &str) -> bool {
    let flight = nudge(&Store::new(cache), url, Some(etag.to_owned()), record);
    web::wait(flight).await.unwrap().as_bool().unwrap()
}

#[wasm_bindgen_test]
async fn a_nudge_with_the_stored_etag_makes_no_request() {
    let url = fixture("same", "etag=%22v1%22");
    store("t-nudge", &url, "v1", "\"v1\"").await;
    assert!(!nudged("t-nudge", &url, "\"v1\"").await);
    assert_eq!(stats("same").await.count, 0);
    assert_eq!(updates_for(&url), 0);
}

#[wasm_bindgen_test]
async fn a_nudge_with_a_new_etag_makes_one_conditional_get() {
    let url = fixture("changed", "etag=%22v2%22");
    store("t-nudge", &url, "v1", "\"v1\"").await;
    assert!(nudged("t-nudge", &url, "\"v2\"").await);
    let seen = stats("changed").await;
    assert_eq!((seen.count, seen.conditional), (1, 1));
    assert_eq!(seen.if_none_match.as_deref(), Some("\"v1\""));
    let copy = stored("t-nudge", &url).await.unwrap();
    assert_eq!(header(&copy, "ETag").as_deref(), Some("\"v2\""));
    assert_eq!(updates_for(&url), 1, "the tabs are told once");
}

#[wasm_bindgen_test]
async fn a_304_leaves_the_cache_and_tells_no_one() {
    let url = fixture("unchanged", "etag=%22v2%22");
    store("t-nudge", &url, "v2 body", "\"v2\"").await;
    assert!(!nudged("t-nudge", &url, "\"v3\"").await);
    assert_eq!(stats("unchanged").await.conditional, 1);
    assert_eq!(
        text(&stored("t-nudge", &url).await.unwrap()).await,
        "v2 body"
    );
    assert_eq!(updates_for(&url), 0);
}

#[wasm_bindgen_test]
async fn nudges_during_a_flight_cost_at_most_one_more_request() {
    let url = fixture("burst", "etag=%22b2%22");
    store("t-nudge", &url, "b1", "\"b1\"").await;
    let flights: Vec<Promise> = (0..5)
        .map(|i| {
            nudge(
                &Store::new("t-nudge"),
                &url,
                Some(format!("\"x{i}\"")),
                record,
            )
        })
        .collect();
    for flight in flights {
        web::wait(flight).await.unwrap();
    }
    let seen = stats("burst").await;
    assert_eq!(
        seen.count, 2,
        "one pass, then one more for the four that came during it"
    );
    assert_eq!(updates_for(&url), 1, "the second pass got a 304");
}

#[wasm_bindgen_test]
async fn precache_installs_once_and_activate_drops_older_versions() {
    let entries = |revision: &str| {
        vec![
            Entry {
                url: fixture("shell-a", ""),
                revision: revision.into(),
            },
            Entry {
                url: fixture("shell-b", ""),
                revision: "b".into(),
            },
        ]
    };
    let (old, new) = (Manifest::new(entries("1")), Manifest::new(entries("2")));
    precache::install(&old).await.unwrap();
    precache::install(&old).await.unwrap();
    assert_eq!(
        stats("shell-a").await.count,
        1,
        "a second install refetches nothing"
    );
    precache::install(&new).await.unwrap();
    web::open_cache("nudge-api-v1").await.unwrap();
    // Other tests' precaches may go too; what matters is that the old one does and the new stays.
    let deleted = precache::activate(&new).await.unwrap();
    assert!(deleted.contains(&old.cache_name()) && !deleted.contains(&new.cache_name()));
    let names = web::cache_names().await.unwrap();
    assert!(names.contains(&new.cache_name()) && names.contains(&"nudge-api-v1".to_owned()));
    assert!(stored(&new.cache_name(), &fixture("shell-b", ""))
        .await
        .is_some());
}

#[wasm_bindgen_test]
async fn a_failing_precache_fails_the_install() {
    let manifest = Manifest::new(vec![Entry {
        url: fixture("shell-broken", "status=500"),
        revision: "x".into(),
    }]);
    assert!(precache::install(&manifest).await.is_err());
}

#[wasm_bindgen_test]
async fn precache_fetches_the_shell_files_concurrently() {
    // Each file is answered only once all four are in flight (a 504 after 5 s otherwise), so an
    // install that fetches one file after another fails, and one that fetches them at once
    // succeeds.
    let group = format!("precache-{}", js_sys::Math::random());
    let manifest = Manifest::new(
        (0..4)
            .map(|i| Entry {
                url: fixture(
                    &format!("shell-together-{i}"),
                    &format!("group={group}&together=4"),
                ),
                revision: "1".into(),
            })
            .collect(),
    );
    precache::install(&manifest).await.unwrap();
    for entry in manifest.entries() {
        assert!(stored(&manifest.cache_name(), &entry.url).await.is_some());
    }
}
