//! Which stored copy answers which request: `Vary`, and private responses with sign-out.
#![cfg(target_arch = "wasm32")]

mod common;

use common::*;
use js_sys::{Array, Object, Promise, Reflect};
use nudge_sw::nudge::nudge;
use nudge_sw::store::{Store, PRIVATE_CACHE};
use nudge_sw::strategy::{CacheFirst, CacheOnly, NetworkFirst, Strategy};
use nudge_sw::{web, worker};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::*;
use web_sys::{ExtendableMessageEvent, ExtendableMessageEventInit, MessageChannel, MessageEvent};

wasm_bindgen_test_configure!(run_in_service_worker);

#[wasm_bindgen_test]
async fn a_varied_copy_serves_only_the_same_header_values() {
    let url = fixture("vary-lang", "vary=Accept-Language");
    let strategy = CacheFirst::new("t-vary");
    let ask = |lang: &str| strategy.handle(get_with(&url, "Accept-Language", lang), None);
    ask("en").await.unwrap();
    ask("en").await.unwrap();
    assert_eq!(
        stats("vary-lang").await.count,
        1,
        "same value: the stored copy"
    );
    ask("fr").await.unwrap();
    assert_eq!(stats("vary-lang").await.count, 2, "another value: a miss");
    ask("fr").await.unwrap();
    assert_eq!(stats("vary-lang").await.count, 2, "and then its own copy");
    // Chromium keeps one entry per URL (a new variant replaces the old one), so how many
    // variants stay is the browser's business; which one may answer is ours.
    let bare = CacheOnly::new("t-vary")
        .handle(get(&url), None)
        .await
        .unwrap();
    assert_eq!(
        bare.status(),
        504,
        "no Accept-Language is a value of its own"
    );
}

#[wasm_bindgen_test]
async fn vary_star_is_never_stored() {
    let url = fixture("vary-star", "vary=*");
    let response = NetworkFirst::new("t-vary-star")
        .handle(get(&url), None)
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(paths("t-vary-star").await.is_empty());
}

/// nudge's own API answers `Vary: Accept-Encoding`. The browser adds that header below the
/// SW, so neither the stored key nor a later request shows it: matching and nudges by URL work.
#[wasm_bindgen_test]
async fn vary_accept_encoding_still_matches_and_revalidates_by_url() {
    let url = fixture("vary-ae", "vary=Accept-Encoding&etag=%22e1%22&cc=no-cache");
    NetworkFirst::new("t-vary-ae")
        .handle(get(&url), None)
        .await
        .unwrap();
    let sent = stats("vary-ae").await.accept_encoding.unwrap_or_default();
    assert!(sent.contains("gzip"), "the browser did send one: {sent:?}");
    let copy = CacheOnly::new("t-vary-ae")
        .handle(get(&url), None)
        .await
        .unwrap();
    assert_eq!(copy.status(), 200);
    assert_eq!(header(&copy, "ETag").as_deref(), Some("\"e1\""));

    let store = Store::new("t-vary-ae");
    let same = nudge(&store, &url, Some("\"e1\"".into()), |_| {
        Promise::resolve(&JsValue::UNDEFINED)
    });
    assert_eq!(web::wait(same).await.unwrap(), JsValue::FALSE);
    assert_eq!(
        stats("vary-ae").await.count,
        1,
        "the stored ETag was found by URL"
    );
    let newer = nudge(&store, &url, Some("\"e2\"".into()), |_| {
        Promise::resolve(&JsValue::UNDEFINED)
    });
    web::wait(newer).await.unwrap();
    let seen = stats("vary-ae").await;
    assert_eq!((seen.count, seen.conditional), (2, 1));
    assert_eq!(seen.if_none_match.as_deref(), Some("\"e1\""));
}

/// Sends `{type: "sign-out"}` as a page would, with a port for the reply, and awaits it.
async fn sign_out_message() -> JsValue {
    let channel = MessageChannel::new().unwrap();
    let reply_port = channel.port2();
    let reply = Promise::new(&mut |resolve, _| reply_port.set_onmessage(Some(&resolve)));
    let data = Object::new();
    Reflect::set(&data, &"type".into(), &"sign-out".into()).unwrap();
    let init = ExtendableMessageEventInit::new();
    init.set_data(&data);
    init.set_ports(&Array::of1(&channel.port1()));
    let event = ExtendableMessageEvent::new_with_event_init_dict("message", &init).unwrap();
    worker::on_message(event);
    let reply: MessageEvent = web::wait(reply).await.unwrap().unchecked_into();
    Reflect::get(&reply.data(), &"type".into()).unwrap()
}

#[wasm_bindgen_test]
async fn private_responses_live_apart_and_sign_out_forgets_only_them() {
    let private = fixture("private", "cc=private,%20no-cache");
    let public = fixture("public", "cc=no-cache");
    let strategy = NetworkFirst::new("t-shared");
    strategy.handle(get(&private), None).await.unwrap();
    strategy.handle(get(&public), None).await.unwrap();
    assert!(stored(PRIVATE_CACHE, &private).await.is_some());
    assert!(stored("t-shared", &private).await.is_none());
    assert!(stored("t-shared", &public).await.is_some());
    let copy = CacheOnly::new("t-shared").handle(get(&private), None).await;
    assert_eq!(copy.unwrap().status(), 200, "served from the private cache");

    assert_eq!(sign_out_message().await, JsValue::from_str("signed-out"));
    assert!(stored(PRIVATE_CACHE, &private).await.is_none());
    assert!(
        stored("t-shared", &public).await.is_some(),
        "public data stays"
    );
    let copy = CacheOnly::new("t-shared").handle(get(&private), None).await;
    assert_eq!(copy.unwrap().status(), 504);
}

fn no_broadcast(_: &str) -> Promise {
    Promise::resolve(&JsValue::UNDEFINED)
}

/// A nudge's revalidation that went out with the session, answered privately after the user
/// signed out: its answer must not bring back the private cache that sign-out deleted.
#[wasm_bindgen_test]
async fn a_private_answer_in_flight_during_sign_out_is_not_stored() {
    let url = fixture("private-race", "cc=private,%20no-cache&hold=private-race");
    let store = Store::new("t-private-race");
    let flight = nudge(&store, &url, None, no_broadcast);
    // The fixture counts a request when it arrives and holds its answer: once counted, the
    // request is on the network, sent before the sign-out below.
    wait_until("the revalidation to reach the network", || async {
        stats("private-race").await.count == 1
    })
    .await;
    assert_eq!(sign_out_message().await, JsValue::from_str("signed-out"));
    release("private-race").await;
    assert_eq!(
        web::wait(flight).await.unwrap(),
        JsValue::FALSE,
        "the answer that arrived after sign-out was not stored"
    );
    assert!(
        stored(PRIVATE_CACHE, &url).await.is_none(),
        "a private answer fetched before sign-out is in the private cache after it"
    );

    // A request sent after the sign-out is stored as usual.
    let after = nudge(&store, &url, None, no_broadcast);
    assert_eq!(web::wait(after).await.unwrap(), JsValue::TRUE);
    assert!(stored(PRIVATE_CACHE, &url).await.is_some());
}

/// The same for a page's own read through a strategy (here NetworkFirst, as the API's reads).
#[wasm_bindgen_test]
async fn a_private_read_in_flight_during_sign_out_is_not_stored() {
    let url = fixture("private-read", "cc=private,%20no-cache&hold=private-read");
    let read = wasm_bindgen_futures::future_to_promise({
        let url = url.clone();
        async move {
            let response = NetworkFirst::new("t-private-read")
                .handle(get(&url), None)
                .await?;
            Ok(response.into())
        }
    });
    wait_until("the read to reach the network", || async {
        stats("private-read").await.count == 1
    })
    .await;
    assert_eq!(sign_out_message().await, JsValue::from_str("signed-out"));
    release("private-read").await;
    let response: web_sys::Response = web::wait(read).await.unwrap().unchecked_into();
    assert_eq!(response.status(), 200, "the page still gets its answer");
    assert!(
        stored(PRIVATE_CACHE, &url).await.is_none(),
        "a private read fetched before sign-out is in the private cache after it"
    );
}

/// What the check relies on for a sign-out that begins after it: a cache opened before a
/// `caches.delete` of its name keeps taking puts, but nobody who opens the name afterwards
/// sees them.
#[wasm_bindgen_test]
async fn a_put_into_a_cache_deleted_after_it_was_opened_is_lost() {
    let url = fixture("doomed", "cc=no-cache");
    let name = "t-doomed";
    web::open_cache(name).await.unwrap(); // it exists, so the delete below has work to do
    let storage = web::scope().caches().unwrap();
    // Issued in this order in one task, as the put's `open` and a sign-out's `delete` can be.
    let opening = storage.open(name);
    let deleting = storage.delete(name);
    let cache: web_sys::Cache = web::wait(opening).await.unwrap().unchecked_into();
    assert_eq!(web::wait(deleting).await.unwrap(), JsValue::TRUE);
    let response = web_sys::Response::new_with_opt_str(Some("late")).unwrap();
    web::cache_put(&cache, &url, &response).await.unwrap();
    assert!(
        stored(name, &url).await.is_none(),
        "the put reached the cache opened by name after the delete"
    );
}
