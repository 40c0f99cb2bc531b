//! Bounded polling: tests wait for a condition, never for a fixed time.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::bail;

/// Polls `probe` every `poll` until it yields `Some(value)`, for at most `timeout`.
///
/// A probe error counts as "not yet" (a page in the middle of a reload cannot run a script,
/// for instance) but is remembered, so a timeout says what was last seen instead of only that
/// time ran out. The probe always runs at least once, even with a zero timeout.
pub async fn wait_until<T, F, Fut>(
    what: &str,
    timeout: Duration,
    poll: Duration,
    mut probe: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    let mut last_error: Option<anyhow::Error>;
    loop {
        match probe().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => last_error = None,
            Err(err) => last_error = Some(err),
        }
        let now = Instant::now();
        if now >= deadline {
            match last_error {
                Some(err) => bail!("timed out after {timeout:?} waiting for {what}: {err:#}"),
                None => bail!("timed out after {timeout:?} waiting for {what}"),
            }
        }
        tokio::time::sleep(poll.min(deadline - now)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn returns_the_first_value_the_probe_yields() {
        let calls = AtomicU32::new(0);
        let got = wait_until(
            "the third call",
            Duration::from_secs(5),
            Duration::from_millis(1),
            || {
                let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
                async move { Ok((n == 3).then_some(n)) }
            },
        )
        .await
        .unwrap();
        assert_eq!(got, 3);
    }

    #[tokio::test]
    async fn times_out_with_the_last_error() {
        let err = wait_until::<(), _, _>(
            "never",
            Duration::from_millis(20),
            Duration::from_millis(5),
            || async { anyhow::bail!("still broken") },
        )
        .await
        .unwrap_err();
        let text = format!("{err:#}");
        assert!(
            text.contains("never") && text.contains("still broken"),
            "{text}"
        );
    }
}
