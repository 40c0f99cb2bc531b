//! Helpers shared by the in-browser tests: the fixture's URLs, its request counts, and direct
//! access to caches. Each test binary uses only some of them.
#![allow(dead_code)]

use nudge_sw::web;
use serde::Deserialize;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{Request, RequestInit, Response, ResponseInit};

/// The fixture server that scripts/test-sw.sh started for this run.
pub const FIXTURE: &str = env!(
    "NUDGE_FIXTURE_URL",
    "run the ServiceWorker tests through scripts/test-sw.sh"
);

/// A port the fixture found closed: fetching it fails like a network that is gone.
pub const CLOSED: &str = env!(
    "NUDGE_FIXTURE_CLOSED_URL",
    "run the ServiceWorker tests through scripts/test-sw.sh"
);

/// The fixture's URL for `/r/{name}` with the given query.
pub fn fixture(name: &str, query: &str) -> String {
    format!("{FIXTURE}/r/{name}?{query}")
}

/// What the fixture saw for one `/r/{name}` path.
#[derive(Debug, Deserialize, PartialEq, Eq)]
pub struct Stats {
    pub count: u64,
    pub conditional: u64,
    pub if_none_match: Option<String>,
    pub accept_encoding: Option<String>,
    pub idempotency_keys: Vec<String>,
}

/// The fixture's request counts for `/r/{name}`.
pub async fn stats(name: &str) -> Stats {
    let url = format!("{FIXTURE}/stats?path=/r/{name}");
    let response = web::fetch(&get(&url)).await.expect("the fixture answers");
    let json = web::wait(response.json().unwrap()).await.unwrap();
    serde_wasm_bindgen::from_value(json).expect("stats JSON")
}

/// Polls `check` until it holds, for at most five seconds: for background work that the test
/// cannot await (the interval is a polling period, not a guess at how long the work takes).
pub async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..100 {
        if check().await {
            return;
        }
        web::wait(web::delay(50)).await.unwrap();
    }
    panic!("timed out waiting until {what}");
}

/// The paths (`/r/{name}`) of the entries of a cache, in insertion order.
pub async fn paths(cache: &str) -> Vec<String> {
    let cache = web::open_cache(cache).await.unwrap();
    let keys = web::cache_keys(&cache).await.unwrap();
    keys.iter()
        .map(|key| web_sys::Url::new(&key.url()).unwrap().pathname())
        .collect()
}

/// A GET request with one header set, as a page would send it.
pub fn get_with(url: &str, name: &str, value: &str) -> Request {
    let headers = web_sys::Headers::new().unwrap();
    headers.set(name, value).unwrap();
    let init = RequestInit::new();
    init.set_headers(&headers);
    Request::new_with_str_and_init(url, &init).unwrap()
}

/// A plain GET request.
pub fn get(url: &str) -> Request {
    Request::new_with_str(url).unwrap()
}

/// A request with another method and a body.
pub fn with_method(url: &str, method: &str) -> Request {
    let init = RequestInit::new();
    init.set_method(method);
    init.set_body(&JsValue::from_str("{}"));
    Request::new_with_str_and_init(url, &init).unwrap()
}

/// The stored response for `url` in the named cache.
pub async fn stored(cache: &str, url: &str) -> Option<Response> {
    let cache = web::open_cache(cache).await.unwrap();
    web::cache_match(&cache, url).await.unwrap()
}

/// Stores a response with `body` and `ETag: etag` under `url`, as an earlier visit would have.
pub async fn store(cache: &str, url: &str, body: &str, etag: &str) {
    let init = ResponseInit::new();
    let headers = web_sys::Headers::new().unwrap();
    headers.set("ETag", etag).unwrap();
    init.set_headers(&headers);
    let response = Response::new_with_opt_str_and_init(Some(body), &init).unwrap();
    let cache = web::open_cache(cache).await.unwrap();
    web::cache_put(&cache, url, &response).await.unwrap();
}

/// A response's body as text.
pub async fn text(response: &Response) -> String {
    let text = web::wait(response.text().unwrap()).await.unwrap();
    text.dyn_into::<js_sys::JsString>().unwrap().into()
}

/// A header's value.
pub fn header(response: &Response, name: &str) -> Option<String> {
    response.headers().get(name).unwrap()
}

/// Lets the fixture answer every request held under `key` (`hold=key`).
pub async fn release(key: &str) {
    let url = format!("{FIXTURE}/release?key={key}");
    let response = web::fetch(&get(&url)).await.expect("the fixture answers");
    assert_eq!(response.status(), 204, "release {key}");
}
