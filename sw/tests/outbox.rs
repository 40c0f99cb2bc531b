//! The outbox's queue inside a real ServiceWorker, against real HTTP (the fixture) and the real
//! IndexedDB: what is queued, what a replay does with each answer, and its order. Each test
//! names a principal of its own, so entries another test leaves behind are held, not sent.
#![cfg(target_arch = "wasm32")]

mod common;

use common::*;
use nudge_sw::outbox::{self, db, Outbox, Outcome, Principal, ENTRY_HEADER, KEY_HEADER};
use nudge_sw::strategy::Strategy;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_service_worker);

async fn as_principal(name: &str) {
    outbox::set_current(Principal::Is(Some(name.into())))
        .await
        .unwrap();
}

/// The ids and URLs (paths) of the waiting entries of `name`.
async fn waiting(name: &str) -> Vec<(f64, String)> {
    let field = |e: &js_sys::Object, f: &str| js_sys::Reflect::get(e, &f.into()).unwrap();
    db::all()
        .await
        .unwrap()
        .iter()
        .filter(|e| field(e, "principal").as_string().as_deref() == Some(name))
        .map(|e| {
            let url = field(e, "url").as_string().unwrap();
            let path = web_sys::Url::new(&url).unwrap().pathname();
            (field(e, "id").as_f64().unwrap(), path)
        })
        .collect()
}

async fn post(strategy: &Outbox, url: &str) -> web_sys::Response {
    strategy
        .handle(with_method(url, "POST"), None)
        .await
        .unwrap()
}

async fn replay() -> Outcome {
    Outcome::from_js(&nudge_sw::web::wait(outbox::replay()).await.unwrap())
}

#[wasm_bindgen_test]
async fn online_a_write_goes_up_once_and_the_page_gets_the_answer() {
    as_principal("t-online").await;
    let response = post(&Outbox::new(), &fixture("ob-online", "status=201")).await;
    assert_eq!(response.status(), 201);
    let seen = stats("ob-online").await;
    assert_eq!(seen.count, 1);
    assert_eq!(seen.idempotency_keys.len(), 1, "a key from the first try");
    assert!(waiting("t-online").await.is_empty());
}

#[wasm_bindgen_test]
async fn without_network_a_write_is_queued_and_answered_202_with_its_key() {
    as_principal("t-offline").await;
    let response = post(&Outbox::new(), &format!("{CLOSED}/r/ob-offline")).await;
    assert_eq!(response.status(), 202);
    let id = header(&response, ENTRY_HEADER).expect("the entry is named");
    assert!(header(&response, KEY_HEADER).is_some_and(|k| !k.is_empty()));
    let queued = waiting("t-offline").await;
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].0.to_string(), id);
    db::delete(queued[0].0).await.unwrap();
}

/// In order, one at a time: a 400 is removed (and counted failed), a 2xx removed as sent, a
/// 503 kept, and nothing behind a kept entry is sent. A replay asked during a pass joins it and
/// makes it go once more (it may be about an entry the pass had not seen): never two at once.
#[wasm_bindgen_test]
async fn a_replay_removes_refused_and_sent_entries_and_keeps_a_503_in_its_place() {
    as_principal("t-replay").await;
    let strategy = Outbox::new();
    // The first write finds no network; the next ones queue behind it without a try.
    let first = post(&strategy, &format!("{CLOSED}/r/ob-first")).await;
    assert_eq!(first.status(), 202);
    for url in [
        fixture("ob-400", "status=400"),
        fixture("ob-201", "status=201"),
        fixture("ob-503", "status=503"),
        fixture("ob-after", "status=201"),
    ] {
        assert_eq!(post(&strategy, &url).await.status(), 202, "{url}");
    }
    for name in ["ob-400", "ob-201", "ob-503", "ob-after"] {
        assert_eq!(
            stats(name).await.count,
            0,
            "{name}: queued behind, not tried"
        );
    }
    // The network came back for the first one: it is gone (as if it had been sent).
    let queued = waiting("t-replay").await;
    db::delete(queued[0].0).await.unwrap();

    let (a, b) = (outbox::replay(), outbox::replay());
    let a = Outcome::from_js(&nudge_sw::web::wait(a).await.unwrap());
    let b = Outcome::from_js(&nudge_sw::web::wait(b).await.unwrap());
    assert_eq!(a, b, "the second call joined the first pass");
    // Sent and refused entries went up once; the kept one was tried by both passes.
    assert_eq!(
        a,
        Outcome {
            sent: 1,
            failed: 1,
            waiting: true
        }
    );
    assert_eq!(stats("ob-400").await.count, 1);
    assert_eq!(stats("ob-201").await.count, 1);
    assert_eq!(stats("ob-503").await.count, 2);
    assert_eq!(
        stats("ob-after").await.count,
        0,
        "nothing passes a kept entry"
    );
    let paths: Vec<String> = waiting("t-replay").await.into_iter().map(|e| e.1).collect();
    assert_eq!(paths, ["/r/ob-503", "/r/ob-after"]);

    let again = replay().await;
    assert!(again.waiting && again.sent == 0);
    let kept = stats("ob-503").await;
    assert_eq!(kept.count, 3, "kept, and tried again");
    let key = kept.idempotency_keys[0].clone();
    assert!(!key.is_empty());
    assert_eq!(
        kept.idempotency_keys,
        [key.clone(), key.clone(), key],
        "every try, the same key"
    );
    for (id, _) in waiting("t-replay").await {
        db::delete(id).await.unwrap();
    }
}

#[wasm_bindgen_test]
async fn entries_of_another_principal_are_held_and_old_ones_dropped() {
    as_principal("t-ann").await;
    let answer = post(&Outbox::new(), &fixture("ob-ann", "status=503")).await;
    assert_eq!(answer.status(), 202, "a 503 queues");
    let key = header(&answer, KEY_HEADER).unwrap();
    assert_eq!(
        stats("ob-ann").await.idempotency_keys,
        [key],
        "the key the page was told"
    );
    as_principal("t-bob").await;
    let bob = replay().await;
    assert_eq!((bob.sent, bob.failed), (0, 0));
    assert_eq!(stats("ob-ann").await.count, 1, "not sent under bob");

    let strategy = Outbox::new().max_age_seconds(1);
    assert_eq!(
        post(&strategy, &fixture("ob-old", "status=503"))
            .await
            .status(),
        202
    );
    nudge_sw::web::wait(nudge_sw::web::delay(1100))
        .await
        .unwrap();
    let dropped = replay().await;
    assert_eq!(dropped.failed, 1, "dropped and reported");
    assert_eq!(stats("ob-old").await.count, 1, "never sent again");
    assert!(waiting("t-bob").await.is_empty());
    for (id, _) in waiting("t-ann").await {
        db::delete(id).await.unwrap();
    }
}
