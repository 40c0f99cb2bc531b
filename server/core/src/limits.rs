//! Limits that keep one client from crowding out the others on the event stream: a cap on the
//! streams one address may hold open and a rate limit on opening them (each open may replay
//! from the log), both keyed by address ([`address_key`]: an IPv6 client counts by its /64).
//! Both answer 429 with `Retry-After` and a JSON body, and 0 turns either off (benchmarks open
//! 10,000 streams from one address).
//!
//! [`RateLimit`] is the token bucket those use, keyed by anything, for an app's own limits
//! (writes per address or per session, new resources per hour).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use actix_web::HttpRequest;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::error::ApiError;

/// The header a trusted proxy names the client in (its last hop counts).
pub const FORWARDED_FOR: &str = "x-forwarded-for";

/// The stream limits of one server; a cheap handle.
#[derive(Clone)]
pub struct Limits {
    stream_opens: Option<RateLimit<IpAddr>>,
    max_streams: usize,
    streams: Arc<Mutex<HashMap<IpAddr, usize>>>,
    trust_forwarded_for: bool,
}

impl Limits {
    /// At most `max_streams` open streams per address (0: unlimited); with
    /// `trust_forwarded_for`, the client is the last `X-Forwarded-For` hop (behind a proxy).
    pub fn new(max_streams: usize, trust_forwarded_for: bool) -> Self {
        Self {
            stream_opens: None,
            max_streams,
            streams: Arc::default(),
            trust_forwarded_for,
        }
    }

    /// Also limits how many event streams each address may open, `per_sec` with bursts of
    /// `burst` (0: off): every open may read the log to replay what was missed.
    pub fn with_stream_open_rate(mut self, per_sec: u32, burst: u32) -> Self {
        self.stream_opens = RateLimit::per_second(per_sec, burst);
        self
    }

    /// Takes one stream open from `ip`'s bucket, or says how long to wait.
    pub fn check_stream_open(&self, ip: Option<IpAddr>) -> Result<(), ApiError> {
        let (Some(limiter), Some(ip)) = (&self.stream_opens, ip) else {
            return Ok(());
        };
        limiter.take(
            &ip,
            "too_many_stream_opens",
            "too many event streams opened from this address; wait before reconnecting",
        )
    }

    /// Lets go of the buckets of clients that have been quiet long enough to be full again, so
    /// that the maps do not grow with every address and session ever seen.
    pub fn forget_idle(&self) {
        if let Some(opens) = &self.stream_opens {
            opens.forget_idle();
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

/// A token bucket per key (a steady rate and a burst), from governor: memory per key is a few
/// words, and keys quiet long enough to be full again are forgotten by [`RateLimit::forget_idle`].
pub struct RateLimit<K: std::hash::Hash + Eq + Clone>(Arc<DefaultKeyedRateLimiter<K>>);

impl<K: std::hash::Hash + Eq + Clone> Clone for RateLimit<K> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<K: std::hash::Hash + Eq + Clone> RateLimit<K> {
    /// `per_sec` with bursts of `burst` (at least `per_sec`); `None` when `per_sec` is 0 (off).
    pub fn per_second(per_sec: u32, burst: u32) -> Option<Self> {
        NonZeroU32::new(per_sec).map(|rate| {
            let burst = NonZeroU32::new(burst.max(per_sec)).unwrap_or(rate);
            Self(Arc::new(governor::RateLimiter::keyed(
                Quota::per_second(rate).allow_burst(burst),
            )))
        })
    }

    /// `per_hour` with bursts of `burst` (at least 1); `None` when `per_hour` is 0 (off).
    pub fn per_hour(per_hour: u32, burst: u32) -> Option<Self> {
        NonZeroU32::new(per_hour).and_then(|rate| {
            let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
            let quota = Quota::with_period(std::time::Duration::from_secs(3600) / rate.get())?;
            Some(Self(Arc::new(governor::RateLimiter::keyed(
                quota.allow_burst(burst),
            ))))
        })
    }

    /// Takes one token from `key`'s bucket, or refuses with 429, `code`, `message` and how long
    /// to wait.
    pub fn take(&self, key: &K, code: &str, message: &str) -> Result<(), ApiError> {
        self.0.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            too_many(code, message, wait.as_secs_f64().ceil() as u64)
        })
    }

    /// Lets go of the buckets of keys quiet long enough to be full again.
    pub fn forget_idle(&self) {
        self.0.retain_recent();
        self.0.shrink_to_fit();
    }
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

/// A 429 with `Retry-After: retry_after_secs` (at least 1).
pub fn too_many(code: &str, message: &str, retry_after_secs: u64) -> ApiError {
    ApiError::TooManyRequests {
        code: code.to_owned(),
        message: message.to_owned(),
        retry_after_secs: retry_after_secs.max(1),
    }
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
        let limits = Limits::new(1, true);
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
