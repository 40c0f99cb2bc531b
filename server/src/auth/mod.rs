//! Who is asking, and whether they may use a room.
//!
//! Public rooms need no sign-in, exactly as before accounts existed. A private room needs a
//! signed-in member: 401 for nobody, 403 for anyone else. Membership is asked of the hub's
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
use crate::hub::StreamSession;
use crate::routes::AppState;
use crate::store::accounts::AccountError;
use session::SessionToken;

/// The signed-in user, when the request carries a live session. On a backend without
/// accounts nobody is signed in.
pub async fn signed_in(req: &HttpRequest, state: &AppState) -> Result<Option<UserName>, ApiError> {
    session_user(SessionToken::from_request(req), state).await
}

/// The user of a session token, when it names a live session.
pub async fn session_user(
    token: Option<SessionToken>,
    state: &AppState,
) -> Result<Option<UserName>, ApiError> {
    match token {
        Some(token) if state.accounts.available() => {
            Ok(state.accounts.session_user(token.hash()).await?)
        }
        _ => Ok(None),
    }
}

/// The user of a session token and the session as a stream keeps it (to end with it), when it
/// names a live session.
pub async fn stream_session(
    token: Option<SessionToken>,
    state: &AppState,
) -> Result<Option<(UserName, StreamSession)>, ApiError> {
    let Some(token) = token.filter(|_| state.accounts.available()) else {
        return Ok(None);
    };
    let token_hash = token.hash();
    let Some(live) = state.accounts.live_session(token_hash).await? else {
        return Ok(None);
    };
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let left_ms = u64::try_from(i128::from(live.expires_at_ms) - now_ms as i128).unwrap_or(0);
    let session = StreamSession {
        token_hash,
        expires_at: tokio::time::Instant::now() + std::time::Duration::from_millis(left_ms),
    };
    Ok(Some((live.user, session)))
}

/// The signed-in user, or 401 (501 on a backend without accounts).
pub async fn require_user(req: &HttpRequest, state: &AppState) -> Result<UserName, ApiError> {
    ensure_available(state)?;
    signed_in(req, state).await?.ok_or_else(not_signed_in)
}

/// 501 on a backend without accounts.
pub fn ensure_available(state: &AppState) -> Result<(), ApiError> {
    if state.accounts.available() {
        Ok(())
    } else {
        Err(AccountError::NotImplemented.into())
    }
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
    if !state.hub.access().is_private(room.as_str()) {
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
    let access = state.hub.access();
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
