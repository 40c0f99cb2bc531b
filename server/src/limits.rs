//! Watercooler's own limits, beside nudge's caps on streams: rate limits on writes per client
//! address and per signed-in session (token buckets: a steady rate and a burst), and on new
//! rooms per address and per account ([`Limits::create_room`]). All answer 429 with
//! `Retry-After` and a JSON body; all are configurable, and 0 turns either off.

use std::net::IpAddr;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{web, ResponseError};
use nudge::limits::RateLimit;

use crate::auth::session::SessionToken;
use crate::error::ApiError;

/// Watercooler's limits; a cheap handle.
#[derive(Clone, Default)]
pub struct Limits {
    writes: Option<RateLimit<IpAddr>>,
    session_writes: Option<RateLimit<[u8; 32]>>,
    rooms_by_address: Option<RateLimit<IpAddr>>,
    rooms_by_account: Option<RateLimit<String>>,
}

impl Limits {
    /// `writes_per_sec` with bursts of `burst` per address (0: unlimited).
    pub fn new(writes_per_sec: u32, burst: u32) -> Self {
        Self {
            writes: RateLimit::per_second(writes_per_sec, burst),
            ..Self::default()
        }
    }

    /// Also limits the creation of rooms: `per_hour` new rooms per address and per account
    /// (each 0: off), with bursts of `burst`. Rooms are never deleted and every page load lists
    /// them, so a client that creates thousands would weigh on everyone for ever.
    pub fn with_room_rate(mut self, per_address: u32, per_account: u32, burst: u32) -> Self {
        self.rooms_by_address = RateLimit::per_hour(per_address, burst);
        self.rooms_by_account = RateLimit::per_hour(per_account, burst);
        self
    }

    /// Also limits each signed-in session to `writes_per_sec` with bursts of `burst` (0: off).
    pub fn with_session_rate(mut self, writes_per_sec: u32, burst: u32) -> Self {
        self.session_writes = RateLimit::per_second(writes_per_sec, burst);
        self
    }

    /// Takes one room creation from the address's and the account's buckets, or says how long
    /// to wait.
    pub fn create_room(&self, ip: Option<IpAddr>, account: Option<&str>) -> Result<(), ApiError> {
        const CODE: &str = "too_many_rooms";
        const MESSAGE: &str = "too many new rooms from this client; use an existing room or wait";
        if let (Some(limiter), Some(ip)) = (&self.rooms_by_address, ip) {
            limiter.take(&ip, CODE, MESSAGE)?;
        }
        if let (Some(limiter), Some(account)) = (&self.rooms_by_account, account) {
            limiter.take(&account.to_owned(), CODE, MESSAGE)?;
        }
        Ok(())
    }

    /// Lets go of the buckets of clients that have been quiet long enough to be full again, so
    /// that the maps do not grow with every address and session ever seen.
    pub fn forget_idle(&self) {
        if let Some(l) = &self.writes {
            l.forget_idle();
        }
        if let Some(l) = &self.session_writes {
            l.forget_idle();
        }
        if let Some(l) = &self.rooms_by_address {
            l.forget_idle();
        }
        if let Some(l) = &self.rooms_by_account {
            l.forget_idle();
        }
    }
}

/// Middleware: the write rate limits, for every method that changes something. The refusal is
/// a response, not an error, so that CORS headers and the request log see it.
pub async fn limit_writes(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    if !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        if let (Some(limits), Some(nudge)) = (
            req.app_data::<web::Data<Limits>>(),
            req.app_data::<web::Data<nudge::Nudge>>(),
        ) {
            let mut checked = Ok(());
            if let (Some(limiter), Some(ip)) =
                (&limits.writes, nudge.limits().client_ip(req.request()))
            {
                checked = limiter.take(
                    &ip,
                    "rate_limited",
                    "too many writes from this address; slow down",
                );
            }
            if let (Ok(()), Some(limiter)) = (&checked, &limits.session_writes) {
                if let Some(token) = SessionToken::from_request(req.request()) {
                    // Keyed by the token's hash, as the store keeps it: the secret stays out of memory.
                    checked = limiter.take(
                        &token.hash().0,
                        "rate_limited",
                        "too many writes from this session; slow down",
                    );
                }
            }
            if let Err(error) = checked {
                return Ok(req
                    .into_response(error.error_response())
                    .map_into_right_body());
            }
        }
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}
