//! HTTP endpoints, one file per group, each with a `configure` function.

pub mod auth;
pub mod members;
pub mod messages;
pub mod presence;
pub mod rooms;
pub mod static_files;

use std::sync::Arc;

use actix_web::{web, HttpRequest, Route};

use crate::access::AccessView;
use crate::error::{self, ApiError};
use crate::presence::Presence;
use crate::store::accounts::Accounts;
use crate::store::Store;
use crate::Config;

/// What every handler may use. Handlers see the store only through its trait.
#[derive(Clone)]
pub struct AppState {
    /// nudge: the log, the streams, the metrics.
    pub nudge: nudge::Nudge,
    /// Rooms and messages.
    pub store: Arc<dyn Store>,
    /// Users, sessions and private rooms, kept by the same backend.
    pub accounts: Arc<dyn Accounts>,
    /// Who may read which room (what the audience of the streams answers from).
    pub access: AccessView,
    /// Ephemeral presence.
    pub presence: Presence,
    /// The settings the server runs with.
    pub config: Arc<Config>,
    /// Write and room rate limits.
    pub limits: crate::limits::Limits,
    /// Password hashing, a bounded number at once.
    pub hasher: crate::auth::password::Hasher,
    /// Sign-in attempts per account name and per address.
    pub login_throttle: crate::auth::throttle::LoginThrottle,
    /// The rooms this node has seen exist.
    pub known_rooms: rooms::KnownRooms,
}

/// Mounts the API (with JSON errors for unknown routes, and the write rate limits) and then the
/// static web app; nudge's app ([`nudge::Nudge::app`]) already has the event stream.
pub fn configure(cfg: &mut web::ServiceConfig, state: &AppState) {
    let config = &state.config;
    cfg.app_data(
        web::JsonConfig::default()
            .limit(config.max_body_bytes)
            .error_handler(error::json_error),
    )
    // Bodies read whole (`web::Bytes`, `String`) have the same limit as JSON ones.
    .app_data(web::PayloadConfig::new(config.max_body_bytes))
    .app_data(web::Data::new(error::BodyLimit(config.max_body_bytes)))
    .app_data(web::QueryConfig::default().error_handler(error::query_error))
    .app_data(web::PathConfig::default().error_handler(error::path_error))
    .app_data(web::Data::new(state.clone()))
    .app_data(web::Data::new(state.limits.clone()))
    .service(
        web::scope("/api")
            .wrap(actix_web::middleware::from_fn(crate::limits::limit_writes))
            .configure(auth::configure)
            .configure(rooms::configure)
            .configure(members::configure)
            .configure(messages::configure)
            .configure(presence::configure)
            .default_service(web::to(error::not_found)),
    )
    .configure(|cfg| static_files::configure(cfg, &config.www_dir));
}

/// A resource's fallback: the path exists, the method does not.
pub fn wrong_method() -> Route {
    web::route().to(error::method_not_allowed)
}

/// The room named in the path, validated.
pub fn room_param(req: &HttpRequest) -> Result<crate::domain::RoomName, ApiError> {
    crate::domain::RoomName::parse(req.match_info().query("room"))
}
