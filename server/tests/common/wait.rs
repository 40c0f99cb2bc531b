//! Bounded polling, shared by the server's test crates: a condition that another task, node or
//! process makes true a moment later is polled, never slept for.
#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// How often [`wait_until`] asks again.
const POLL: Duration = Duration::from_millis(10);

/// Polls `check` until it holds, failing the test with `what` once `within` has passed in all.
/// The deadline bounds the whole wait, checks included: a check that hangs fails it too.
pub async fn wait_until<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, check()).await {
            Ok(true) => return,
            Ok(false) if Instant::now() < deadline => tokio::time::sleep(POLL).await,
            _ => panic!("{what}: not within {within:?}"),
        }
    }
}
