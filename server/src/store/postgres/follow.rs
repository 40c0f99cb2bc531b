//! The log follower: the one place where a node publishes durable events to its hub.
//!
//! It holds a connection that `LISTEN`s on [`NOTIFY_CHANNEL`], and whenever it is woken (a
//! `NOTIFY` from any node's commit, a poke from this node's writer right after a local commit,
//! or a periodic tick as a safety net) it reads `events after last_published` from the log and
//! publishes them in id order. Because only the follower publishes, and only what follows
//! `last_published`, an event is published once and never out of order; because the log, not
//! the notification, is the source, a lost `NOTIFY` costs latency, never an event. After losing
//! its connection it reconnects with backoff, `LISTEN`s again and only then catches up, so
//! nothing committed in between is missed.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_postgres::{Client, Statement};
use tokio_util::sync::CancellationToken;

use super::conn::{store_error, Connector};
use super::read::event_from_row;
use super::NOTIFY_CHANNEL;
use crate::hub::{Hub, HubEvent};
use crate::store::{StoreError, StoreResult};

/// Events read per query while catching up.
const PAGE: i64 = 1024;
/// How often the log is read even without a wake-up.
const SAFETY_NET: Duration = Duration::from_secs(1);
const MIN_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Follows the log from `last_published` on.
pub struct Follower {
    connector: Arc<Connector>,
    hub: Hub,
    last_published: i64,
    wake: Arc<Notify>,
    shutdown: CancellationToken,
}

impl Follower {
    /// A follower that publishes events after `head` into `hub`.
    pub fn new(
        connector: Arc<Connector>,
        hub: Hub,
        head: i64,
        wake: Arc<Notify>,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            connector,
            hub,
            last_published: head,
            wake,
            shutdown,
        }
    }

    /// Follows until `shutdown` is cancelled, reconnecting whenever the connection is lost.
    pub async fn run(mut self) {
        let mut backoff = MIN_BACKOFF;
        while !self.shutdown.is_cancelled() {
            match self.session(&mut backoff).await {
                Ok(()) => return,
                // Said once per outage, not once per attempt.
                Err(error) if backoff == MIN_BACKOFF => {
                    tracing::warn!(%error, "log follower lost PostgreSQL; reconnecting")
                }
                Err(error) => tracing::debug!(%error, ?backoff, "log follower reconnecting"),
            }
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// One connection's life: listen, catch up, then catch up again on every wake-up. Returns
    /// `Ok` on shutdown and the error when the connection is lost.
    async fn session(&mut self, backoff: &mut Duration) -> StoreResult<()> {
        let (client, mut notifications) = self.connector.connect_listening().await?;
        client
            .batch_execute(&format!("LISTEN {NOTIFY_CHANNEL}"))
            .await
            .map_err(store_error)?;
        let page = client
            .prepare("SELECT id, topic, url FROM events WHERE id > $1 ORDER BY id LIMIT $2")
            .await
            .map_err(store_error)?;
        *backoff = MIN_BACKOFF;
        let mut tick = tokio::time::interval(SAFETY_NET);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Caught up first: anything committed before the LISTEN took effect is read here.
        let mut wanted = i64::MAX;
        loop {
            if wanted > self.last_published {
                self.catch_up(&client, &page).await?;
            }
            wanted = tokio::select! {
                _ = self.shutdown.cancelled() => return Ok(()),
                _ = self.wake.notified() => i64::MAX,
                _ = tick.tick() => i64::MAX,
                notification = notifications.recv() => match notification {
                    // The payload is the head at that commit: nothing to read if we are there.
                    Some(n) => n.payload().parse::<i64>().unwrap_or(i64::MAX),
                    None => return Err(StoreError::Unavailable(
                        "the listening connection was lost".into(),
                    )),
                },
            };
        }
    }

    /// Publishes everything after `last_published`, in id order.
    async fn catch_up(&mut self, client: &Client, page: &Statement) -> StoreResult<()> {
        loop {
            let rows = client
                .query(page, &[&self.last_published, &PAGE])
                .await
                .map_err(store_error)?;
            for row in &rows {
                let event = event_from_row(row);
                self.hub
                    .publish(HubEvent::logged(event.id, &event.topic, &event.url));
                self.last_published = event.id;
            }
            if (rows.len() as i64) < PAGE {
                return Ok(());
            }
        }
    }
}
