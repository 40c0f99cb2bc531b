//! Who is asking, and whether they may use a room.
//!
//! Public rooms need no sign-in, exactly as before accounts existed. A private room needs a
//! signed-in member: 401 for nobody, 403 for anyone else. Membership is asked of the
//! [`AccessView`](crate::access::AccessView), the same view that filters event delivery, so a
//! read and a nudge never disagree.
//!
//! - [`session`]: the session token and its cookie.
//! - [`password`]: argon2 hashing on threads of its own, a bounded number at once.
//! - [`throttle`]: sign-in attempts per account name and per address.

pub mod password;
pub mod session;
pub mod throttle;

use actix_web::http::StatusCode;
use actix_web::HttpRequest;

use crate::domain::{RoomName, UserName};
use crate::error::ApiError;
use crate::http_cache::{REVALIDATE, REVALIDATE_PRIVATE};
use crate::routes::AppState;
use session::SessionToken;

/// The signed-in user, when the request carries a live session.
pub async fn signed_in(req: &HttpRequest, state: &AppState) -> Result<Option<UserName>, ApiError> {
    session_user(SessionToken::from_request(req), state).await
}

/// The user of a session token, when it names a live session.
pub async fn session_user(
    token: Option<SessionToken>,
    state: &AppState,
) -> Result<Option<UserName>, ApiError> {
    match token {
        Some(token) => Ok(state.accounts.session_user(token.hash()).await?),
        None => Ok(None),
    }
}

/// The signed-in user, or 401.
pub async fn require_user(req: &HttpRequest, state: &AppState) -> Result<UserName, ApiError> {
    signed_in(req, state).await?.ok_or_else(not_signed_in)
}

/// The 401 of anything that needs a session.
pub fn not_signed_in() -> ApiError {
    ApiError::client(StatusCode::UNAUTHORIZED, "not_signed_in", "sign in first")
}

/// The 403 of a private room's non-member.
pub fn forbidden() -> ApiError {
    ApiError::client(
        StatusCode::FORBIDDEN,
        "forbidden",
        "only members of this room may do that",
    )
}

/// How a caller may use a room they passed [`room_access`] for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomAccess {
    /// Anyone may.
    Public,
    /// A member of a private room.
    Member(UserName),
}

impl RoomAccess {
    /// `Cache-Control` of the room's cacheable reads: a private room's answers differ by user,
    /// so only the user's own (private) caches may keep them.
    pub fn cache_control(&self) -> &'static str {
        match self {
            Self::Public => REVALIDATE,
            Self::Member(_) => REVALIDATE_PRIVATE,
        }
    }
}

/// Whether the caller may read and write `room`: public rooms pass; private ones need a
/// signed-in member (401 for nobody, 403 for others).
pub async fn room_access(
    req: &HttpRequest,
    state: &AppState,
    room: &RoomName,
) -> Result<RoomAccess, ApiError> {
    if !state.access.is_private(room.as_str()) {
        return Ok(RoomAccess::Public);
    }
    room_access_as(signed_in(req, state).await?, state, room)
}

/// [`room_access`] for a caller already known to be `user` (or nobody).
pub fn room_access_as(
    user: Option<UserName>,
    state: &AppState,
    room: &RoomName,
) -> Result<RoomAccess, ApiError> {
    let access = &state.access;
    if !access.is_private(room.as_str()) {
        return Ok(RoomAccess::Public);
    }
    let user = user.ok_or_else(not_signed_in)?;
    if access.may_read_room(room.as_str(), Some(user.as_str())) {
        Ok(RoomAccess::Member(user))
    } else {
        Err(forbidden())
    }
}
