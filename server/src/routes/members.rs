//! Members of private rooms: `PUT` and `DELETE /api/rooms/{room}/members/{name}`, by a member.
//! A member may add any registered user and remove anyone, themselves included. Each change is
//! logged on `rooms`, so every page refetches its room list; a removed member's open streams
//! get `forbidden` for the room (see [`crate::hub`]).

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use super::{room_param, wrong_method, AppState};
use crate::auth::require_user;
use crate::domain::UserName;
use crate::error::ApiError;
use crate::http_cache::NEVER_STORE;

/// Mounts `/rooms/{room}/members/{name}`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/rooms/{room}/members/{name}")
            .route(web::put().to(add))
            .route(web::delete().to(remove))
            .default_service(wrong_method()),
    );
}

async fn add(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let (room, name) = (room_param(&req)?, name_param(&req)?);
    let by = require_user(&req, &state).await?;
    state.accounts.add_member(&room, &by, &name).await?;
    Ok(done())
}

async fn remove(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let (room, name) = (room_param(&req)?, name_param(&req)?);
    let by = require_user(&req, &state).await?;
    state.accounts.remove_member(&room, &by, &name).await?;
    Ok(done())
}

fn name_param(req: &HttpRequest) -> Result<UserName, ApiError> {
    UserName::parse(req.match_info().query("name"))
}

fn done() -> HttpResponse {
    HttpResponse::NoContent()
        .insert_header((header::CACHE_CONTROL, NEVER_STORE))
        .finish()
}
