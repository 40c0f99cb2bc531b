//! Rooms: the list, creation, the `recent` resource and message pages.
//!
//! A private room's reads need a member ([`crate::auth::room_access`]) and are marked
//! `private`. The room list differs by user (it shows private rooms to their members only), so
//! it is always `private`; its version counts membership changes too, which are logged on the
//! same `rooms` topic as new rooms, so its ETag is the id of the newest event that may have
//! changed anyone's list.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::{room_param, wrong_method, AppState};
use crate::auth::{require_user, room_access, signed_in};
use crate::domain::{PageCursor, DEFAULT_LIMIT, MAX_LIMIT, RECENT_COUNT};
use crate::error::ApiError;
use crate::http_cache::{cacheable_json_with, REVALIDATE_PRIVATE};

/// Mounts `/rooms`, `/rooms/{room}`, `/rooms/{room}/recent` and `GET /rooms/{room}/messages`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/rooms")
            .route(web::get().to(list))
            .default_service(wrong_method()),
    )
    .service(
        web::resource("/rooms/{room}")
            .route(web::put().to(create))
            .default_service(wrong_method()),
    )
    .service(
        web::resource("/rooms/{room}/recent")
            .route(web::get().to(recent))
            .default_service(wrong_method()),
    );
}

async fn list(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let user = signed_in(&req, &state).await?;
    let rooms = state.store.rooms().await?;
    let access = state.hub.access();
    // Hidden rooms count too: the version must move whenever any list may have changed.
    let version = rooms
        .iter()
        .map(|r| r.created_event_id)
        .chain([access.version()])
        .max()
        .unwrap_or(0);
    let user = user.as_ref().map(|u| u.as_str());
    let names: Vec<_> = rooms
        .iter()
        .filter(|r| access.may_read_room(&r.name, user))
        .map(|r| json!({ "name": r.name, "private": access.is_private(&r.name) }))
        .collect();
    let body = json!({ "rooms": names });
    Ok(cacheable_json_with(
        &req,
        version,
        &body,
        REVALIDATE_PRIVATE,
    ))
}

/// The optional body of `PUT /api/rooms/{room}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewRoom {
    #[serde(default)]
    private: bool,
}

/// `PUT /api/rooms/{room}`: 201 when created, 200 when it existed. Without a body (or with
/// `{"private": false}`) the room is public, as it always was; `{"private": true}` makes a
/// private room whose first member is the signed-in caller.
async fn create(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let room = room_param(&req)?;
    let wanted: NewRoom = if body.iter().all(u8::is_ascii_whitespace) {
        NewRoom::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::invalid("invalid_json", &format!("the body is not valid: {e}"))
        })?
    };
    let created = if wanted.private {
        let creator = require_user(&req, &state).await?;
        state.accounts.create_private_room(&room, &creator).await?
    } else if state.hub.access().is_private(room.as_str()) {
        // An existing private room answers its members only.
        room_access(&req, &state, &room).await?;
        false
    } else {
        state.store.create_room(&room).await?
    };
    let body =
        json!({ "name": room.as_str(), "private": state.hub.access().is_private(room.as_str()) });
    let mut response = if created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    Ok(response
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(body))
}

async fn recent(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let room = room_param(&req)?;
    let access = room_access(&req, &state, &room).await?;
    let recent = state
        .store
        .recent(&room, RECENT_COUNT)
        .await?
        .ok_or_else(|| no_such_room(room.as_str()))?;
    Ok(cacheable_json_with(
        &req,
        recent.last_event_id,
        &recent,
        access.cache_control(),
    ))
}

/// The query of a message page: at most one of `before` and `after`, and a `limit`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    before: Option<i64>,
    after: Option<i64>,
    limit: Option<u32>,
}

impl PageQuery {
    fn cursor_and_limit(&self) -> Result<(PageCursor, u32), ApiError> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::invalid(
                "invalid_limit",
                &format!("limit must be between 1 and {MAX_LIMIT}"),
            ));
        }
        let cursor = match (self.before, self.after) {
            (Some(_), Some(_)) => {
                return Err(ApiError::invalid(
                    "conflicting_cursor",
                    "give either before or after, not both",
                ))
            }
            (Some(before), None) => PageCursor::Before(before),
            (None, Some(after)) => PageCursor::After(after),
            (None, None) => PageCursor::Latest,
        };
        Ok((cursor, limit))
    }
}

/// `GET /api/rooms/{room}/messages?before=ID|after=ID&limit=N`, oldest first.
pub async fn page(
    req: HttpRequest,
    query: web::Query<PageQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let room = room_param(&req)?;
    let access = room_access(&req, &state, &room).await?;
    let (cursor, limit) = query.cursor_and_limit()?;
    let page = state
        .store
        .page(&room, cursor, limit)
        .await?
        .ok_or_else(|| no_such_room(room.as_str()))?;
    Ok(cacheable_json_with(
        &req,
        page.last_event_id,
        &page,
        access.cache_control(),
    ))
}

fn no_such_room(room: &str) -> ApiError {
    ApiError::not_found(
        "room_not_found",
        &format!("there is no room named `{room}`"),
    )
}
