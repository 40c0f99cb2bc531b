//! `POST /api/rooms/{room}/messages`: the write path. The answer comes after the message and
//! its event are durable; the same `Idempotency-Key` makes a retry take effect once. A
//! signed-in writer writes under the account's name (see [`NewMessage::validate`]).

use actix_web::http::header::{self, HeaderName};
use actix_web::{web, HttpRequest, HttpResponse};

use super::{room_param, rooms, wrong_method, AppState};
use crate::auth::{room_access_as, signed_in};
use crate::domain::{MessageBody, NewMessage};
use crate::error::ApiError;
use crate::store::IdempotencyKey;

/// The request header carrying the client's idempotency key.
pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
/// Set on an answer replayed from an earlier request with the same key.
pub const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");
const MAX_KEY_LEN: usize = 255;

/// Mounts `/rooms/{room}/messages` (POST here, GET pages from [`rooms`]).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/rooms/{room}/messages")
            .route(web::post().to(post))
            .route(web::get().to(rooms::page))
            .default_service(wrong_method()),
    );
}

async fn post(
    req: HttpRequest,
    body: web::Json<MessageBody>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let room = room_param(&req)?;
    // Asked once (no store read without a session cookie): both who may write here and under
    // which name a signed-in writer writes.
    let user = signed_in(&req, &state).await?;
    room_access_as(user.clone(), &state, &room)?;
    let message = NewMessage::validate(&room, body.into_inner(), user.as_ref())?;
    let key = idempotency_key(&req)?;
    // A first message creates its room: the same limits as `PUT /api/rooms/{room}`.
    rooms::admit_new_room(&req, &state, &room).await?;
    let appended = state.store.append_message(message, key).await?;
    state.known_rooms.insert(room.as_str());
    let mut response = HttpResponse::Created();
    response
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((
            header::LOCATION,
            format!(
                "/api/rooms/{}/messages?after={}&limit=1",
                room,
                appended.message.id - 1
            ),
        ));
    if appended.replayed {
        response.insert_header((IDEMPOTENT_REPLAYED, "true"));
    }
    Ok(response.json(appended.message))
}

fn idempotency_key(req: &HttpRequest) -> Result<Option<IdempotencyKey>, ApiError> {
    let Some(value) = req.headers().get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let key = value.to_str().unwrap_or_default();
    let printable = key.bytes().all(|b| b.is_ascii_graphic());
    if key.is_empty() || key.len() > MAX_KEY_LEN || !printable {
        return Err(ApiError::invalid(
            "invalid_idempotency_key",
            &format!("Idempotency-Key must be 1-{MAX_KEY_LEN} printable ASCII characters"),
        ));
    }
    Ok(Some(IdempotencyKey(key.to_owned())))
}
