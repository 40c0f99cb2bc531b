//! nudge's route table applied to real `Request` objects.
#![cfg(target_arch = "wasm32")]

mod common;

use common::*;
use nudge_sw::config;
use nudge_sw::precache::{Entry, Manifest};
use nudge_sw::web;
use nudge_sw::worker::find_route;
use wasm_bindgen_test::*;
use web_sys::{Request, RequestCache, RequestInit, RequestMode};

wasm_bindgen_test_configure!(run_in_service_worker);

/// The name of the route that takes `request`, or `None` when the SW must not intercept it.
fn decision(request: &Request) -> Option<String> {
    let manifest = Manifest::new(vec![
        Entry {
            url: "/".into(),
            revision: "1".into(),
        },
        Entry {
            url: "/app.js".into(),
            revision: "2".into(),
        },
    ]);
    let router = config::router(&manifest);
    let route = find_route(&router, request)?;
    route.handler.as_ref().map(|_| route.name.to_string())
}

fn own(path: &str) -> String {
    format!("{}{path}", web::origin())
}

#[wasm_bindgen_test]
fn the_first_matching_route_wins() {
    // `/api/rooms/x/presence` is under `/api/` too, but its own route comes first.
    assert_eq!(
        decision(&get(&own("/api/rooms/general/presence"))),
        Some("presence".into())
    );
    assert_eq!(
        decision(&get(&own("/api/rooms/general/recent?x=1"))),
        Some("api".into())
    );
    assert_eq!(decision(&get(&own("/app.js"))), Some("shell".into()));
    let init = RequestInit::new();
    init.set_cache(RequestCache::OnlyIfCached);
    init.set_mode(RequestMode::SameOrigin);
    let cached = Request::new_with_str_and_init(&own("/api/rooms"), &init).unwrap();
    assert_eq!(decision(&cached), Some("cached-read".into()));
    assert_eq!(
        decision(&with_method(&own("/api/rooms/general/messages"), "POST")),
        Some("post-message".into()),
        "posting a message goes through the outbox"
    );
}

#[wasm_bindgen_test]
fn no_match_means_no_interception() {
    assert_eq!(
        decision(&get(&own("/api/events?topic=rooms/general"))),
        None
    );
    assert_eq!(
        decision(&with_method(&own("/api/rooms"), "POST")),
        None,
        "writes other than posting a message"
    );
    assert_eq!(decision(&get(&own("/favicon.ico"))), None);
    assert_eq!(
        decision(&get(&fixture("elsewhere", ""))),
        None,
        "another origin"
    );
}
