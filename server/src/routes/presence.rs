//! Presence: ephemeral, never logged, served `no-store`. A change sends an id-less nudge.
//! A private room's presence is for its members only, like the rest of the room. A room that
//! does not exist has no presence: 404, and nothing is kept for it.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::rooms::existing_room;
use super::{room_param, wrong_method, AppState};
use crate::auth::room_access;
use crate::domain::validate_presence_name;
use crate::error::ApiError;
use crate::http_cache::ephemeral_json;

/// Mounts `/rooms/{room}/presence`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/rooms/{room}/presence")
            .route(web::get().to(here))
            .route(web::post().to(announce))
            .default_service(wrong_method()),
    );
}

async fn here(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let room = room_param(&req)?;
    room_access(&req, &state, &room).await?;
    existing_room(&state, &room).await?;
    let here = state.presence.here(room.as_str());
    Ok(ephemeral_json(
        &json!({ "room": room.as_str(), "here": here }),
    ))
}

#[derive(Debug, Deserialize)]
struct Announce {
    name: String,
}

async fn announce(
    req: HttpRequest,
    body: web::Json<Announce>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let room = room_param(&req)?;
    room_access(&req, &state, &room).await?;
    validate_presence_name(&body.name)?;
    existing_room(&state, &room).await?;
    if state.presence.announce(room.as_str(), &body.name) {
        state.nudge.ephemeral(&room.topic(), &room.presence_url());
    }
    let ttl = state.config.presence_ttl_secs;
    Ok(HttpResponse::build(StatusCode::OK)
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({ "room": room.as_str(), "ttl_secs": ttl })))
}
