//! Sign-in attempts per account name and per client address, so that guessing one account's
//! password is slow from any number of addresses, and one address cannot try many accounts.
//!
//! Every attempt counts, before its password is hashed: checking first is what keeps a guesser
//! from spending the server's hashing (see [`super::password`]), and a person signing in
//! succeeds within the first few attempts anyway. A refused attempt is a 429 with
//! `Retry-After`, the same for a name that exists and one that does not.
//!
//! Memory is bounded: buckets are dropped once full again ([`LoginThrottle::forget_idle`], on
//! the server's minute timer), and at most [`MAX_TRACKED_NAMES`] names are tracked at once
//! (about 200 bytes each); past that, a name not yet tracked waits until idle ones are dropped.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::error::ApiError;

/// Most account names whose attempts are counted at once.
pub const MAX_TRACKED_NAMES: usize = 100_000;

/// The sign-in throttles of one server; a cheap handle.
#[derive(Clone, Default)]
pub struct LoginThrottle {
    by_name: Option<Arc<DefaultKeyedRateLimiter<String>>>,
    by_address: Option<Arc<DefaultKeyedRateLimiter<IpAddr>>>,
    /// When the names were last swept because they were full: at most once a second, so a
    /// crowd of new names costs one sweep, not one per attempt.
    swept: Arc<Mutex<Option<Instant>>>,
}

impl LoginThrottle {
    /// At most `per_name` attempts a minute on one account name and `per_address` from one
    /// address (each also the burst); 0 turns either off.
    pub fn new(per_name: u32, per_address: u32) -> Self {
        Self {
            by_name: per_minute(per_name),
            by_address: per_minute(per_address),
            swept: Arc::default(),
        }
    }

    /// Counts one attempt on the account `name_key` (a [`crate::domain::UserName::key`], or
    /// `None` for a name that could not be registered) from `ip`; 429 when either is spent.
    pub fn attempt(&self, name_key: Option<&str>, ip: Option<IpAddr>) -> Result<(), ApiError> {
        if let (Some(limiter), Some(ip)) = (&self.by_address, ip) {
            check(limiter, &ip, "from this address")?;
        }
        if let (Some(limiter), Some(key)) = (&self.by_name, name_key) {
            if limiter.len() >= MAX_TRACKED_NAMES {
                self.sweep_full(limiter);
                if limiter.len() >= MAX_TRACKED_NAMES {
                    return Err(refused("for now", 1));
                }
            }
            check(limiter, &key.to_owned(), "for this account")?;
        }
        Ok(())
    }

    fn sweep_full(&self, limiter: &DefaultKeyedRateLimiter<String>) {
        let mut swept = self.swept.lock().unwrap_or_else(|p| p.into_inner());
        if swept.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
            limiter.retain_recent();
            *swept = Some(Instant::now());
        }
    }

    /// Drops the buckets that are full again, so the maps hold only recent attempts.
    pub fn forget_idle(&self) {
        if let Some(limiter) = &self.by_name {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        if let Some(limiter) = &self.by_address {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

fn per_minute<K: std::hash::Hash + Eq + Clone>(
    per_minute: u32,
) -> Option<Arc<DefaultKeyedRateLimiter<K>>> {
    NonZeroU32::new(per_minute)
        .map(|n| Arc::new(governor::RateLimiter::keyed(Quota::per_minute(n))))
}

fn check<K: std::hash::Hash + Eq + Clone>(
    limiter: &DefaultKeyedRateLimiter<K>,
    key: &K,
    whose: &str,
) -> Result<(), ApiError> {
    limiter.check_key(key).map_err(|not_until| {
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        refused(whose, wait.as_secs_f64().ceil() as u64)
    })
}

fn refused(whose: &str, retry_after_secs: u64) -> ApiError {
    ApiError::TooManyRequests {
        code: "too_many_sign_ins".into(),
        message: format!("too many sign-in attempts {whose}; wait a little"),
        retry_after_secs: retry_after_secs.max(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_throttled_whatever_the_address() {
        let throttle = LoginThrottle::new(3, 0);
        for i in 0..3u8 {
            let ip = IpAddr::from([10, 0, 0, i]);
            assert!(throttle.attempt(Some("ann"), Some(ip)).is_ok());
        }
        let refused = throttle.attempt(Some("ann"), Some(IpAddr::from([10, 0, 0, 9])));
        assert!(
            matches!(refused, Err(ApiError::TooManyRequests { retry_after_secs, .. }) if retry_after_secs >= 1)
        );
        assert!(
            throttle.attempt(Some("bob"), None).is_ok(),
            "other names go on"
        );
        assert!(throttle.attempt(None, None).is_ok(), "nothing to count");
    }

    #[test]
    fn an_address_is_throttled_whatever_the_name() {
        let throttle = LoginThrottle::new(0, 2);
        let ip = Some(IpAddr::from([10, 0, 0, 1]));
        assert!(throttle.attempt(Some("a"), ip).is_ok());
        assert!(throttle.attempt(Some("b"), ip).is_ok());
        assert!(throttle.attempt(Some("c"), ip).is_err());
        assert!(throttle
            .attempt(Some("c"), Some(IpAddr::from([10, 0, 0, 2])))
            .is_ok());
    }
}
