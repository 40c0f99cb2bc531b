//! Limits that keep one client from crowding out the others: rate limits on writes per client
//! address and per signed-in session (token buckets: a steady rate and a burst), on new rooms
//! per address and per account ([`Limits::create_room`]), a cap on the event streams one
//! address may hold open, and a rate limit on opening them (each open may replay from the
//! log). All answer 429 with `Retry-After` and a JSON body; all are
//! configurable, and 0 turns either off (benchmarks open 10,000 streams from one address).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use actix_web::body::{EitherBody, MessageBody};
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
    rooms_by_address: Option<Arc<DefaultKeyedRateLimiter<IpAddr>>>,
    rooms_by_account: Option<Arc<DefaultKeyedRateLimiter<String>>>,
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
            rooms_by_address: None,
            rooms_by_account: None,
        }
    }

    /// Also limits the creation of rooms: `per_hour` new rooms per address and per account
    /// (each 0: off), with bursts of `burst`. Rooms are never deleted and every page load lists
    /// them, so a client that creates thousands would weigh on everyone for ever.
    pub fn with_room_rate(mut self, per_address: u32, per_account: u32, burst: u32) -> Self {
        self.rooms_by_address = hourly_limiter(per_address, burst);
        self.rooms_by_account = hourly_limiter(per_account, burst);
        self
    }

    /// Takes one room creation from the address's and the account's buckets, or says how long
    /// to wait.
    pub fn create_room(&self, ip: Option<IpAddr>, account: Option<&str>) -> Result<(), ApiError> {
        let refused = |wait: std::time::Duration| {
            too_many(
                "too_many_rooms",
                "too many new rooms from this client; use an existing room or wait",
                wait.as_secs_f64().ceil() as u64,
            )
        };
        if let (Some(limiter), Some(ip)) = (&self.rooms_by_address, ip) {
            limiter
                .check_key(&ip)
                .map_err(|n| refused(n.wait_time_from(DefaultClock::default().now())))?;
        }
        if let (Some(limiter), Some(account)) = (&self.rooms_by_account, account) {
            limiter
                .check_key(&account.to_owned())
                .map_err(|n| refused(n.wait_time_from(DefaultClock::default().now())))?;
        }
        Ok(())
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
        if let Some(rooms) = &self.rooms_by_address {
            rooms.retain_recent();
            rooms.shrink_to_fit();
        }
        if let Some(rooms) = &self.rooms_by_account {
            rooms.retain_recent();
            rooms.shrink_to_fit();
        }
        if let Some(opens) = &self.stream_opens {
            opens.retain_recent();
            opens.shrink_to_fit();
        }
    }

    /// The client's address as every per-address limit keys it (see [`address_key`]): the
    /// peer, or behind a trusted proxy the last `X-Forwarded-For` hop.
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
        forwarded.or(peer).map(address_key)
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

/// The key of an address for every per-address limit and cap: an IPv4 address is itself, an
/// IPv6 address counts by its /64 (the usual allocation of one subscriber, who may use any of
/// its 2^64 addresses and must not multiply the limits by doing so), and an IPv4-mapped IPv6
/// address is the IPv4 one.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !(u128::MAX >> 64))),
        v4 => v4,
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

fn hourly_limiter<K: std::hash::Hash + Eq + Clone>(
    per_hour: u32,
    burst: u32,
) -> Option<Arc<DefaultKeyedRateLimiter<K>>> {
    NonZeroU32::new(per_hour).and_then(|rate| {
        let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(std::time::Duration::from_secs(3600) / rate.get())?;
        Some(Arc::new(governor::RateLimiter::keyed(
            quota.allow_burst(burst),
        )))
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

/// Middleware: the write rate limits, for every method that changes something. The refusal is
/// a response, not an error, so that CORS headers and the request log see it.
pub async fn limit_writes(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ip: &str) -> IpAddr {
        address_key(ip.parse().unwrap())
    }

    #[test]
    fn ipv6_addresses_count_by_their_64_and_ipv4_by_itself() {
        assert_eq!(key("2001:db8:1:2:aaaa::1"), key("2001:db8:1:2:ffff:1:2:3"));
        assert_eq!(
            key("2001:db8:1:2::1"),
            "2001:db8:1:2::".parse::<IpAddr>().unwrap()
        );
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("192.0.2.1"), "192.0.2.1".parse::<IpAddr>().unwrap());
        assert_ne!(key("192.0.2.1"), key("192.0.2.2"));
        assert_eq!(
            key("::ffff:192.0.2.1"),
            key("192.0.2.1"),
            "IPv4-mapped is IPv4"
        );
    }

    #[test]
    fn every_per_address_key_is_the_64() {
        let limits = Limits::new(1, 1, 1, true);
        let a = limits.client_ip_of(Some("2001:db8::1"), None);
        let b = limits.client_ip_of(Some("2001:db8::2"), Some("127.0.0.1".parse().unwrap()));
        assert_eq!(a, b);
        let peer = limits.client_ip_of(None, Some("2001:db8::3".parse().unwrap()));
        assert_eq!(peer, a);
        let _slot = limits.open_stream(a).unwrap();
        assert!(
            limits.open_stream(b).is_err(),
            "the stream cap counts the /64"
        );
    }
}
