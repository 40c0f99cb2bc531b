//! Responses the SW makes itself: stored copies marked as offline, and JSON errors.

use wasm_bindgen::JsValue;
use web_sys::{Headers, Response, ResponseInit};

use crate::error::Result;

/// The header that tells the page it is looking at stored data served without the network.
pub const OFFLINE_HEADER: &str = "X-Nudge-Cache";

/// A stored response re-issued with `X-Nudge-Cache: offline`. A `Response`'s headers are
/// immutable once it came out of the cache, so this builds a new one around the same body.
pub fn mark_offline(stored: &Response) -> Result<Response> {
    let headers = Headers::new_with_headers(&stored.headers())?;
    headers.set(OFFLINE_HEADER, "offline")?;
    let init = ResponseInit::new();
    init.set_status(stored.status());
    init.set_status_text(&stored.status_text());
    init.set_headers(&headers);
    Ok(Response::new_with_opt_readable_stream_and_init(
        stored.body().as_ref(),
        &init,
    )?)
}

/// A JSON error in the server's shape, `{"error": {"code", "message"}}`, never stored.
pub fn json_error(status: u16, code: &str, message: &str) -> Result<Response> {
    let body = format!(
        r#"{{"error":{{"code":{},"message":{}}}}}"#,
        json_string(code),
        json_string(message)
    );
    let headers = Headers::new()?;
    headers.set("Content-Type", "application/json")?;
    headers.set("Cache-Control", "no-store")?;
    headers.set(OFFLINE_HEADER, "miss")?;
    let init = ResponseInit::new();
    init.set_status(status);
    init.set_headers(&JsValue::from(headers));
    Ok(Response::new_with_opt_str_and_init(Some(&body), &init)?)
}

/// A JSON string literal, quoted and escaped by the JavaScript engine itself.
fn json_string(text: &str) -> String {
    js_sys::JSON::stringify(&JsValue::from_str(text))
        .ok()
        .and_then(|s| s.as_string())
        .unwrap_or_else(|| "\"\"".to_owned())
}
