//! Route tables given as JSON (`self.NUDGE_ROUTES`), through the worker's own fetch path.
//!
//! The worker is built from the table as the loader would give it, and each request goes
//! through `Worker::fetch` with a stand-in `FetchEvent` that records whether `respondWith` was
//! called: the only way to see "not intercepted" from inside a test, since the runner's SW is
//! not ours. Strategies are told apart by the fixture's request counts.
#![cfg(target_arch = "wasm32")]

mod common;

use std::cell::RefCell;
use std::rc::Rc;

use common::*;
use js_sys::{Object, Promise, Reflect};
use nudge_sw::precache::Manifest;
use nudge_sw::web;
use nudge_sw::worker::Worker;
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::*;
use web_sys::{FetchEvent, Response};

wasm_bindgen_test_configure!(run_in_service_worker);

/// The fixture's origin, which the tables name since the tests' SW has another one.
fn fixture_origin() -> String {
    web_sys::Url::new(FIXTURE).unwrap().origin()
}

/// Sends a GET for `url` through `worker`, as the loader's fetch listener would; `None` when
/// the worker did not call `respondWith`.
async fn serve(worker: &Worker, url: &str) -> Option<Response> {
    let answer = Rc::new(RefCell::new(None::<JsValue>));
    let slot = Rc::clone(&answer);
    let respond_with = Closure::<dyn FnMut(JsValue)>::new(move |promise| {
        *slot.borrow_mut() = Some(promise);
    });
    let wait_until = Closure::<dyn FnMut(JsValue)>::new(|_: JsValue| {});
    let event = Object::new();
    Reflect::set(&event, &"request".into(), &get(url)).unwrap();
    Reflect::set(&event, &"respondWith".into(), respond_with.as_ref()).unwrap();
    Reflect::set(&event, &"waitUntil".into(), wait_until.as_ref()).unwrap();
    let intercepted = worker.fetch(event.unchecked_ref::<FetchEvent>());
    let answer = answer.borrow_mut().take();
    assert_eq!(intercepted, answer.is_some(), "fetch() tells the truth");
    let promise: Promise = answer?.unchecked_into();
    Some(web::wait(promise).await.unwrap().unchecked_into())
}

/// Runs `work` with `console.error` captured; returns what it logged.
fn console_errors(work: impl FnOnce()) -> Vec<String> {
    let console = Reflect::get(&js_sys::global(), &"console".into()).unwrap();
    let original = Reflect::get(&console, &"error".into()).unwrap();
    let logged = Rc::new(RefCell::new(Vec::new()));
    let sink = Rc::clone(&logged);
    let capture = Closure::<dyn FnMut(JsValue)>::new(move |message: JsValue| {
        sink.borrow_mut()
            .push(message.as_string().unwrap_or_default());
    });
    Reflect::set(&console, &"error".into(), capture.as_ref()).unwrap();
    work();
    Reflect::set(&console, &"error".into(), &original).unwrap();
    let logged = logged.borrow().clone();
    logged
}

#[wasm_bindgen_test]
async fn a_json_table_routes_as_declared() {
    let origin = fixture_origin();
    let json = format!(
        r#"{{"routes": [
            {{"match": {{"exact": "/r/tbl-pass", "origin": "{origin}"}},
              "strategy": {{"name": "pass"}}}},
            {{"name": "static", "match": {{"pattern": "/r/:name", "origin": "{origin}"}},
              "method": "GET", "strategy": {{"name": "cache-first", "cache": "tbl-static"}}}},
            {{"name": "api", "match": {{"prefix": "/", "origin": "{origin}"}},
              "strategy": {{"name": "network-first", "cache": "tbl-api", "networkTimeoutMs": 5000,
                            "expiration": {{"maxEntries": 5}}}}}}
        ], "precache": false}}"#
    );
    // Given as a JSON string here and as an object below: the loader's script may set either.
    let worker = Worker::new(Some(&JsValue::from_str(&json)), Manifest::default());
    let as_object = js_sys::JSON::parse(&json).unwrap();
    let same = Worker::new(Some(&as_object), Manifest::default());

    let static_url = fixture("tbl-static", "cc=no-cache");
    for worker in [&worker, &same] {
        let response = serve(worker, &static_url)
            .await
            .expect("cache-first answers");
        assert_eq!(response.status(), 200);
    }
    assert_eq!(
        stats("tbl-static").await.count,
        1,
        "cache-first: one fetch, then hits"
    );
    assert!(stored("tbl-static", &static_url).await.is_some());

    // `/r/a/b` is not a whole match of `/r/:name`, so the broader network-first route takes it.
    let api_url = format!("{FIXTURE}/r/tbl-api/x?cc=no-cache");
    for _ in 0..2 {
        let response = serve(&worker, &api_url)
            .await
            .expect("network-first answers");
        assert_eq!(response.status(), 200);
    }
    assert_eq!(
        stats("tbl-api/x").await.count,
        2,
        "network-first: every read asks"
    );
    assert!(stored("tbl-api", &api_url).await.is_some());

    assert!(
        serve(&worker, &fixture("tbl-pass", "")).await.is_none(),
        "pass"
    );
    let own = format!("{}/api/rooms", web::origin());
    assert!(
        serve(&worker, &own).await.is_none(),
        "routes name the fixture's origin only"
    );
}

#[wasm_bindgen_test]
async fn without_a_table_nudges_own_routes_apply() {
    let worker = Worker::new(None, Manifest::default());
    let own = format!("{}/api/rooms/general/recent", web::origin());
    let route = nudge_sw::worker::find_route(worker.router(), &get(&own)).unwrap();
    assert_eq!(route.name, "api");
}

#[wasm_bindgen_test]
async fn an_invalid_table_is_reported_and_nothing_is_intercepted() {
    let cases = [
        (
            JsValue::from_str(
                r#"{"routes": [{"match": {"prefix": "/"}, "strategy": {"name": "network-frist", "cache": "c"}}]}"#,
            ),
            "routes[0]: unknown variant `network-frist`",
        ),
        (
            JsValue::from_str(
                r#"{"routes": [{"match": {"prefix": "/"}, "strategy": {"name": "cache-first"}}]}"#,
            ),
            "routes[0]: strategy cache-first needs a `cache` name",
        ),
        (JsValue::from_str("{routes: []"), "not JSON"),
        (
            JsValue::NULL,
            "must be an object with `routes` (or its JSON text), not null",
        ),
        (js_sys::Array::new().into(), "not an array"),
    ];
    for (table, expected) in cases {
        let mut worker = None;
        let errors =
            console_errors(|| worker = Some(Worker::new(Some(&table), Manifest::default())));
        let worker = worker.unwrap();
        assert_eq!(
            errors.len(),
            1,
            "one console.error for {expected}: {errors:?}"
        );
        assert!(errors[0].contains("invalid route table"), "{}", errors[0]);
        assert!(
            errors[0].contains(expected),
            "{expected:?} not in {}",
            errors[0]
        );
        for url in [
            format!("{}/api/rooms/general/recent", web::origin()),
            format!("{}/", web::origin()),
            fixture("tbl-invalid", ""),
        ] {
            assert!(
                serve(&worker, &url).await.is_none(),
                "{url} must not be intercepted"
            );
        }
    }
    assert_eq!(
        stats("tbl-invalid").await.count,
        0,
        "nothing fetched on the SW's behalf"
    );
}
