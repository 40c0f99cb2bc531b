//! Rooms: the list, creation, the `recent` resource and message pages.
//!
//! A private room's reads need a member ([`crate::auth::room_access`]), checked before any
//! validator, and are marked `private`; their body is the same for every member, so their ETag
//! is the version a nudge names. The room list differs by user (it shows private rooms to their
//! members only), so it is always `private`, and its validator depends on who asks
//! ([`list_etag`]); its version counts membership changes too, which are logged on the same
//! `rooms` topic as new rooms, so it moves with the newest event that may have changed anyone's
//! list. The list comes in pages of a bounded size, and new rooms are rate-limited per address
//! and per account ([`admit_new_room`]): rooms are never deleted.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{room_param, wrong_method, AppState};
use crate::auth::{require_user, room_access, signed_in};
use crate::domain::{PageCursor, RoomName, DEFAULT_LIMIT, MAX_LIMIT, RECENT_COUNT};
use crate::error::ApiError;
use crate::http_cache::{cacheable_json_tagged, cacheable_json_with, etag_for, REVALIDATE_PRIVATE};

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

/// The most rooms one page of the list holds, and how many it holds unless asked.
pub const MAX_ROOMS_PER_PAGE: usize = 500;
/// See [`MAX_ROOMS_PER_PAGE`].
pub const DEFAULT_ROOMS_PER_PAGE: usize = 200;

/// The query of the room list: `after` a room name (the previous page's last), and a `limit`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    after: Option<String>,
    limit: Option<usize>,
}

/// `GET /api/rooms?after=NAME&limit=N`: the rooms the caller may see, by name, one page at a
/// time; `next` names the following page when there is one.
async fn list(
    req: HttpRequest,
    query: web::Query<ListQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let limit = query.limit.unwrap_or(DEFAULT_ROOMS_PER_PAGE);
    if !(1..=MAX_ROOMS_PER_PAGE).contains(&limit) {
        return Err(ApiError::invalid(
            "invalid_limit",
            &format!("limit must be between 1 and {MAX_ROOMS_PER_PAGE}"),
        ));
    }
    let user = signed_in(&req, &state).await?;
    let mut rooms = state.store.rooms().await?;
    // Sorted here, byte-wise, so that `after` means the same on every backend and collation.
    rooms.sort_unstable_by(|a, b| a.name.cmp(&b.name));
    let access = &state.access;
    // Hidden rooms count too: the version must move whenever any list may have changed.
    let version = rooms
        .iter()
        .map(|r| r.created_event_id)
        .chain([access.version()])
        .max()
        .unwrap_or(0);
    let user = user.as_ref().map(|u| u.as_str());
    let after = query.after.as_deref().unwrap_or("");
    let mut visible = rooms
        .iter()
        .filter(|r| r.name.as_str() > after && access.may_read_room(&r.name, user))
        .map(|r| (r.name.as_str(), access.is_private(&r.name)));
    let page: Vec<(&str, bool)> = visible.by_ref().take(limit).collect();
    let more = visible.next().is_some();
    let names: Vec<_> = page
        .iter()
        .map(|(name, private)| json!({ "name": name, "private": private }))
        .collect();
    let mut body = json!({ "rooms": names });
    if let (true, Some((last, _))) = (more, page.last()) {
        body["next"] = json!(format!("/api/rooms?after={last}&limit={limit}"));
    }
    let etag = list_etag(version, user.is_some(), &body);
    Ok(cacheable_json_tagged(&req, etag, &body, REVALIDATE_PRIVATE))
}

/// The room list's ETag. Its body depends on who asks, so its validator must too: two callers
/// get the same tag only when they get the same body. A signed-out caller gets the version (the
/// id a `rooms` nudge carries, as for every other resource); a signed-in one gets the version
/// followed by a digest of the body they were sent. So an anonymous client sending a member's
/// tag, a member sending the anonymous tag, or one member sending another's (with other private
/// rooms) gets the full list, never a 304 for someone else's body.
pub fn list_etag(version: i64, signed_in: bool, body: &serde_json::Value) -> String {
    if !signed_in {
        return etag_for(version);
    }
    let digest = Sha256::digest(body.to_string().as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{version}-{hex}\"")
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
        admit_new_room(&req, &state, &room).await?;
        state.accounts.create_private_room(&room, &creator).await?
    } else if state.access.is_private(room.as_str()) {
        // An existing private room answers its members only.
        room_access(&req, &state, &room).await?;
        false
    } else {
        admit_new_room(&req, &state, &room).await?;
        state.store.create_room(&room).await?
    };
    state.known_rooms.insert(room.as_str());
    let body = json!({ "name": room.as_str(), "private": state.access.is_private(room.as_str()) });
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

/// The rooms this node knows to exist. Rooms are never deleted, so once a room is seen to
/// exist it always will: each room is asked of the store once per node, and then never again,
/// which keeps the checks below off the store on the hot paths (posting, presence).
#[derive(Clone, Default)]
pub struct KnownRooms(Arc<RwLock<HashSet<String>>>);

impl KnownRooms {
    fn contains(&self, room: &str) -> bool {
        self.0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(room)
    }

    /// Remembers that `room` exists.
    pub fn insert(&self, room: &str) {
        if !self.contains(room) {
            let mut rooms = self.0.write().unwrap_or_else(|p| p.into_inner());
            rooms.insert(room.to_owned());
        }
    }
}

/// Whether `room` exists (on any node: the store is asked when this node has not seen it yet).
pub async fn room_exists(state: &AppState, room: &RoomName) -> Result<bool, ApiError> {
    if state.known_rooms.contains(room.as_str()) {
        return Ok(true);
    }
    let exists = state
        .store
        .page(room, PageCursor::Latest, 1)
        .await?
        .is_some();
    if exists {
        state.known_rooms.insert(room.as_str());
    }
    Ok(exists)
}

/// Before a request that may create `room` (`PUT`, or a first message): nothing when it
/// exists; for a new room, one creation from the caller's address's and account's buckets
/// ([`crate::limits::Limits::create_room`]), or 429.
pub async fn admit_new_room(
    req: &HttpRequest,
    state: &AppState,
    room: &RoomName,
) -> Result<(), ApiError> {
    if room_exists(state, room).await? {
        return Ok(());
    }
    let user = signed_in(req, state).await?;
    state.limits.create_room(
        state.nudge.limits().client_ip(req),
        user.as_ref().map(|u| u.as_str()),
    )
}

/// 404 unless `room` exists.
pub async fn existing_room(state: &AppState, room: &RoomName) -> Result<(), ApiError> {
    if room_exists(state, room).await? {
        Ok(())
    } else {
        Err(no_such_room(room.as_str()))
    }
}

fn no_such_room(room: &str) -> ApiError {
    ApiError::not_found(
        "room_not_found",
        &format!("there is no room named `{room}`"),
    )
}
