//! Members of private rooms: `PUT` and `DELETE /api/rooms/{room}/members/{name}`, by a member.
//! `{name}` is any registered name, percent-encoded, in any case or width (see
//! [`crate::domain::names`]).
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

/// The member named in the path, percent-decoded in full: the router leaves `%2F`, `%25` and
/// `%2B` encoded, and a name may hold `/`, `%` or `+` (the page sends `encodeURIComponent`).
fn name_param(req: &HttpRequest) -> Result<UserName, ApiError> {
    #[derive(serde::Deserialize)]
    struct MemberPath {
        name: String,
    }
    let path: MemberPath = req
        .match_info()
        .load()
        .map_err(|e| ApiError::invalid("invalid_path", &format!("the path is not valid: {e}")))?;
    UserName::parse(&path.name)
}

fn done() -> HttpResponse {
    HttpResponse::NoContent()
        .insert_header((header::CACHE_CONTROL, NEVER_STORE))
        .finish()
}
