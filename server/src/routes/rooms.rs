//! Rooms: the list, creation, the `recent` resource and message pages.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::{room_param, wrong_method, AppState};
use crate::domain::{PageCursor, DEFAULT_LIMIT, MAX_LIMIT, RECENT_COUNT};
use crate::error::ApiError;
use crate::http_cache::cacheable_json;

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
    let rooms = state.store.rooms().await?;
    let version = rooms.iter().map(|r| r.created_event_id).max().unwrap_or(0);
    let names: Vec<_> = rooms.iter().map(|r| json!({ "name": r.name })).collect();
    Ok(cacheable_json(&req, version, &json!({ "rooms": names })))
}

async fn create(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let room = room_param(&req)?;
    let created = state.store.create_room(&room).await?;
    let body = json!({ "name": room.as_str() });
    Ok(if created {
        HttpResponse::Created().json(body)
    } else {
        HttpResponse::Ok().json(body)
    })
}

async fn recent(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let room = room_param(&req)?;
    let recent = state
        .store
        .recent(&room, RECENT_COUNT)
        .await?
        .ok_or_else(|| no_such_room(room.as_str()))?;
    Ok(cacheable_json(&req, recent.last_event_id, &recent))
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
    let (cursor, limit) = query.cursor_and_limit()?;
    let page = state
        .store
        .page(&room, cursor, limit)
        .await?
        .ok_or_else(|| no_such_room(room.as_str()))?;
    Ok(cacheable_json(&req, page.last_event_id, &page))
}

fn no_such_room(room: &str) -> ApiError {
    ApiError::not_found(
        "room_not_found",
        &format!("there is no room named `{room}`"),
    )
}
