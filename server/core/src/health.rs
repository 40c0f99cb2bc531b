//! Operations: `/healthz` (the process answers), `/readyz` (the store answers too) and
//! `/metrics` (Prometheus text format), and `/debug/connections` when the log is on, to clients
//! on this machine only.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use crate::error::ApiError;
use crate::Nudge;

/// Mounts `/healthz`, `/readyz` and `/metrics`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics))
        .route("/debug/connections", web::get().to(connections));
}

/// Headers a proxy adds: a request that carries one came from further than its peer.
const PROXY_HEADERS: [&str; 3] = ["x-forwarded-for", "forwarded", "x-real-ip"];

/// Whether the request comes straight from this machine: a loopback peer and no sign of a proxy
/// in between (a proxy on the same host has a loopback address too, whoever it serves).
fn is_local_and_direct(req: &HttpRequest) -> bool {
    req.peer_addr().is_some_and(|a| a.ip().is_loopback())
        && !PROXY_HEADERS.iter().any(|h| req.headers().contains_key(*h))
}

/// The request log names every path asked of the server, so only someone on this machine may
/// read it.
async fn connections(req: HttpRequest, state: web::Data<Nudge>) -> Result<HttpResponse, ApiError> {
    if !is_local_and_direct(&req) {
        return Err(ApiError::client(
            StatusCode::FORBIDDEN,
            "local_only",
            "the connection log is served to clients on this machine only",
        ));
    }
    if !state.connections().enabled() {
        return Err(ApiError::not_found(
            "connection_log_off",
            "start nudge with --connection-log N to keep this log",
        ));
    }
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({ "connections": state.connections().snapshot() })))
}

async fn metrics(state: web::Data<Nudge>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .body(state.metrics().render(state.hub()))
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

async fn readyz(state: web::Data<Nudge>) -> Result<HttpResponse, ApiError> {
    state.log().ping().await?;
    Ok(HttpResponse::Ok().json(json!({ "status": "ready" })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn only_a_direct_loopback_peer_is_local() {
        let from = |peer: &str| TestRequest::default().peer_addr(peer.parse().unwrap());
        assert!(is_local_and_direct(
            &from("127.0.0.1:5000").to_http_request()
        ));
        assert!(is_local_and_direct(&from("[::1]:5000").to_http_request()));
        assert!(!is_local_and_direct(
            &from("192.0.2.7:5000").to_http_request()
        ));
        assert!(!is_local_and_direct(
            &from("[2001:db8::1]:5000").to_http_request()
        ));
        let proxied = from("127.0.0.1:5000").insert_header(("X-Forwarded-For", "192.0.2.7"));
        assert!(!is_local_and_direct(&proxied.to_http_request()));
        assert!(!is_local_and_direct(
            &TestRequest::default().to_http_request()
        ));
    }
}
