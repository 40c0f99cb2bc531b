//! Strong ETags and conditional GETs for the cacheable reads.
//!
//! Every cacheable read carries `Cache-Control: no-cache` (store it, but revalidate before each
//! use) and a strong ETag; `If-None-Match` with a matching tag gets a 304 and no body.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};
use serde::Serialize;

/// `Cache-Control` of a cacheable read.
pub const REVALIDATE: &str = "no-cache";
/// `Cache-Control` of a cacheable read whose answer depends on who asks (a private list, a
/// list of what one may read): only the user's own caches may keep it, and the ServiceWorker keeps it in the
/// cache that sign-out empties.
pub const REVALIDATE_PRIVATE: &str = "private, no-cache";
/// `Cache-Control` of an ephemeral read or an error.
pub const NEVER_STORE: &str = "no-store";

/// A strong entity tag from a version number: `"42"`.
pub fn etag_for(version: i64) -> String {
    format!("\"{version}\"")
}

/// Whether `If-None-Match` names `etag` (or is `*`). Comparison is weak, as RFC 9110 wants for
/// this header, which for our strong tags means the same opaque value with or without `W/`.
pub fn not_modified(req: &HttpRequest, etag: &str) -> bool {
    req.headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .any(|candidate| candidate == "*" || candidate.trim_start_matches("W/") == etag)
}

/// Answers a cacheable read: 304 when the client already has this version, else 200 with JSON.
pub fn cacheable_json<T: Serialize>(req: &HttpRequest, version: i64, body: &T) -> HttpResponse {
    cacheable_json_with(req, version, body, REVALIDATE)
}

/// [`cacheable_json`] with the given `Cache-Control` ([`REVALIDATE`] or [`REVALIDATE_PRIVATE`]).
pub fn cacheable_json_with<T: Serialize>(
    req: &HttpRequest,
    version: i64,
    body: &T,
    cache_control: &'static str,
) -> HttpResponse {
    cacheable_json_tagged(req, etag_for(version), body, cache_control)
}

/// [`cacheable_json_with`] with a ready-made strong `etag` (quoted), for a resource whose tag is
/// more than its version (a list whose body depends on who asks).
pub fn cacheable_json_tagged<T: Serialize>(
    req: &HttpRequest,
    etag: String,
    body: &T,
    cache_control: &'static str,
) -> HttpResponse {
    let mut response = if not_modified(req, &etag) {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::CACHE_CONTROL, cache_control))
        .insert_header((header::ETAG, etag.clone()))
        .insert_header((header::VARY, HeaderValue::from_static("Accept-Encoding")));
    if not_modified(req, &etag) {
        response.finish()
    } else {
        response.json(body)
    }
}

/// Answers an ephemeral read, which no cache may keep.
pub fn ephemeral_json<T: Serialize>(body: &T) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, NEVER_STORE))
        .json(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn if_none_match_lists_and_wildcards() {
        let req = TestRequest::default()
            .insert_header((header::IF_NONE_MATCH, "\"1\", W/\"7\""))
            .to_http_request();
        assert!(not_modified(&req, "\"7\""));
        assert!(!not_modified(&req, "\"70\""));
        let any = TestRequest::default()
            .insert_header((header::IF_NONE_MATCH, "*"))
            .to_http_request();
        assert!(not_modified(&any, "\"3\""));
        assert!(!not_modified(
            &TestRequest::default().to_http_request(),
            "\"3\""
        ));
    }
}
