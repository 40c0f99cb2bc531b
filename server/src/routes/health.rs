//! Operations: `/healthz` (the process answers), `/readyz` (the store answers too) and
//! `/metrics` (Prometheus text format), and `/debug/connections` when the log is on.

use actix_web::{web, HttpResponse};
use serde_json::json;

use super::AppState;
use crate::error::ApiError;

/// Mounts `/healthz`, `/readyz` and `/metrics`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics))
        .route("/debug/connections", web::get().to(connections));
}

async fn connections(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if !state.connections.enabled() {
        return Err(ApiError::not_found(
            "connection_log_off",
            "start nudge with --connection-log N to keep this log",
        ));
    }
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({ "connections": state.connections.snapshot() })))
}

async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .body(state.metrics.render(&state.hub))
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    state.store.ping().await?;
    Ok(HttpResponse::Ok().json(json!({ "status": "ready" })))
}
