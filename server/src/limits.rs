//! Limits that keep one client from crowding out the others: rate limits on writes per client
//! address and per signed-in session (token buckets: a steady rate and a burst), and a cap on
//! the event streams one address may hold open, and a rate limit on opening them (each open
//! may replay from the log). All answer 429 with `Retry-After` and a JSON body; both are
//! configurable, and 0 turns either off (benchmarks open 10,000 streams from one address).

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{web, HttpRequest, ResponseError};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::auth::session::SessionToken;
use crate::error::ApiError;

/// The header a trusted proxy names the client in (its last hop counts).
pub const FORWARDED_FOR: &str = "x-forwarded-for";

/// The limits of one server; a cheap handle.
#[derive(Clone)]
pub struct Limits {
    writes: Option<Arc<DefaultKeyedRateLimiter<IpAddr>>>,
    session_writes: Option<Arc<DefaultKeyedRateLimiter<[u8; 32]>>>,
    stream_opens: Option<Arc<DefaultKeyedRateLimiter<IpAddr>>>,
    max_streams: usize,
    streams: Arc<Mutex<HashMap<IpAddr, usize>>>,
    trust_forwarded_for: bool,
}

impl Limits {
    /// `writes_per_sec` with bursts of `burst` per address (0: unlimited), at most
    /// `max_streams` open streams per address (0: unlimited).
    pub fn new(
        writes_per_sec: u32,
        burst: u32,
        max_streams: usize,
        trust_forwarded_for: bool,
    ) -> Self {
        Self {
            writes: limiter(writes_per_sec, burst),
            session_writes: None,
            stream_opens: None,
            max_streams,
            streams: Arc::default(),
            trust_forwarded_for,
        }
    }

    /// Also limits each signed-in session to `writes_per_sec` with bursts of `burst` (0: off).
    pub fn with_session_rate(mut self, writes_per_sec: u32, burst: u32) -> Self {
        self.session_writes = limiter(writes_per_sec, burst);
        self
    }

    /// Also limits how many event streams each address may open, `per_sec` with bursts of
    /// `burst` (0: off): every open may read the log to replay what was missed.
    pub fn with_stream_open_rate(mut self, per_sec: u32, burst: u32) -> Self {
        self.stream_opens = limiter(per_sec, burst);
        self
    }

    /// Takes one stream open from `ip`'s bucket, or says how long to wait.
    pub fn check_stream_open(&self, ip: Option<IpAddr>) -> Result<(), ApiError> {
        let (Some(limiter), Some(ip)) = (&self.stream_opens, ip) else {
            return Ok(());
        };
        limiter.check_key(&ip).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            too_many(
                "too_many_stream_opens",
                "too many event streams opened from this address; wait before reconnecting",
                wait.as_secs_f64().ceil() as u64,
            )
        })
    }

    /// Lets go of the buckets of clients that have been quiet long enough to be full again, so
    /// that the maps do not grow with every address and session ever seen.
    pub fn forget_idle(&self) {
        if let Some(writes) = &self.writes {
            writes.retain_recent();
            writes.shrink_to_fit();
        }
        if let Some(writes) = &self.session_writes {
            writes.retain_recent();
            writes.shrink_to_fit();
        }
        if let Some(opens) = &self.stream_opens {
            opens.retain_recent();
            opens.shrink_to_fit();
        }
    }

    /// The client's address: the peer, or behind a trusted proxy the last `X-Forwarded-For` hop.
    pub fn client_ip(&self, req: &HttpRequest) -> Option<IpAddr> {
        let forwarded_for = req
            .headers()
            .get(FORWARDED_FOR)
            .and_then(|v| v.to_str().ok());
        self.client_ip_of(forwarded_for, req.peer_addr().map(|a| a.ip()))
    }

    /// [`Limits::client_ip`] from the `X-Forwarded-For` value and the peer's address.
    pub fn client_ip_of(
        &self,
        forwarded_for: Option<&str>,
        peer: Option<IpAddr>,
    ) -> Option<IpAddr> {
        let forwarded = forwarded_for
            .filter(|_| self.trust_forwarded_for)
            .and_then(|v| v.rsplit(',').next())
            .and_then(|ip| ip.trim().parse().ok());
        forwarded.or(peer)
    }

    /// Takes one of `ip`'s stream slots, or says how long to wait.
    pub fn open_stream(&self, ip: Option<IpAddr>) -> Result<StreamSlot, ApiError> {
        let Some(ip) = ip.filter(|_| self.max_streams > 0) else {
            return Ok(StreamSlot(None));
        };
        let mut streams = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        let open = streams.entry(ip).or_default();
        if *open >= self.max_streams {
            return Err(too_many(
                "too_many_streams",
                &format!("at most {} event streams per address", self.max_streams),
                5,
            ));
        }
        *open += 1;
        Ok(StreamSlot(Some((self.clone(), ip))))
    }

    fn close_stream(&self, ip: IpAddr) {
        let mut streams = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(open) = streams.get_mut(&ip) {
            *open -= 1;
            if *open == 0 {
                streams.remove(&ip);
            }
        }
    }
}

fn limiter<K: std::hash::Hash + Eq + Clone>(
    per_sec: u32,
    burst: u32,
) -> Option<Arc<DefaultKeyedRateLimiter<K>>> {
    NonZeroU32::new(per_sec).map(|rate| {
        let burst = NonZeroU32::new(burst.max(per_sec)).unwrap_or(rate);
        Arc::new(governor::RateLimiter::keyed(
            Quota::per_second(rate).allow_burst(burst),
        ))
    })
}

/// One open stream's place in its address's count, given back on drop.
pub struct StreamSlot(Option<(Limits, IpAddr)>);

impl Drop for StreamSlot {
    fn drop(&mut self) {
        if let Some((limits, ip)) = self.0.take() {
            limits.close_stream(ip);
        }
    }
}

fn too_many(code: &str, message: &str, retry_after_secs: u64) -> ApiError {
    ApiError::TooManyRequests {
        code: code.to_owned(),
        message: message.to_owned(),
        retry_after_secs: retry_after_secs.max(1),
    }
}

/// Takes one write from `key`'s bucket, or says how long to wait.
fn take<K: std::hash::Hash + Eq + Clone>(
    limiter: &DefaultKeyedRateLimiter<K>,
    key: &K,
    from: &str,
) -> Result<(), ApiError> {
    limiter.check_key(key).map_err(|not_until| {
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        too_many(
            "rate_limited",
            &format!("too many writes from this {from}; slow down"),
            wait.as_secs_f64().ceil() as u64,
        )
    })
}

/// Middleware: the write rate limits, for every method that changes something.
pub async fn limit_writes(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        if let Some(limits) = req.app_data::<web::Data<Limits>>() {
            let mut checked = Ok(());
            if let (Some(limiter), Some(ip)) = (&limits.writes, limits.client_ip(req.request())) {
                checked = take(limiter, &ip, "address");
            }
            if let (Ok(()), Some(limiter)) = (&checked, &limits.session_writes) {
                if let Some(token) = SessionToken::from_request(req.request()) {
                    // Keyed by the token's hash, as the store keeps it: the secret stays out of memory.
                    checked = take(limiter, &token.hash().0, "session");
                }
            }
            if let Err(error) = checked {
                return Err(actix_web::error::InternalError::from_response(
                    "rate limited",
                    error.error_response(),
                )
                .into());
            }
        }
    }
    next.call(req).await
}
