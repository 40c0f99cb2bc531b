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
//!
//! Each event is shown to the app's [`Audience::committed`] (with its note) just before it is
//! published, so every node changes its view of who may read what in commit order, and a
//! revocation made on any node ends the topic on this node's streams before anything committed
//! after it is delivered. It then tells `published` how far it got, which is what a write on
//! this node can wait for before it answers ([`super::PostgresStore::published`]).
//!
//! An ended session on any node `NOTIFY`s [`SESSIONS_CHANNEL`] with the session's key in hex
//! ([`super::notify_session_ended`]), and the follower ends that session's streams on this
//! node. Such a notification is not in the log: a node whose listening connection was down at
//! that moment missed it, so after reconnecting the follower asks the audience which of its
//! streams' sessions have ended ([`Audience::session_ended`]) and ends those.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::{watch, Notify};
use tokio_postgres::{Client, Notification, Statement};
use tokio_util::sync::CancellationToken;

use super::conn::{store_error, Connector};
use super::read::event_from_row;
use super::{NOTIFY_CHANNEL, SESSIONS_CHANNEL};
use crate::audience::SessionKey;
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
    published: watch::Sender<i64>,
}

impl Follower {
    /// A follower that publishes events after `head` into `hub`.
    pub fn new(
        connector: Arc<Connector>,
        hub: Hub,
        head: i64,
        wake: Arc<Notify>,
        shutdown: CancellationToken,
        published: watch::Sender<i64>,
    ) -> Self {
        Self {
            connector,
            hub,
            last_published: head,
            wake,
            shutdown,
            published,
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
            .batch_execute(&format!(
                "LISTEN {NOTIFY_CHANNEL}; LISTEN {SESSIONS_CHANNEL}"
            ))
            .await
            .map_err(store_error)?;
        let page = client
            .prepare("SELECT id, topic, url, note FROM events WHERE id > $1 ORDER BY id LIMIT $2")
            .await
            .map_err(store_error)?;
        *backoff = MIN_BACKOFF;
        // Listening again after a gap: a sign-out notified meanwhile was missed.
        self.end_ended_sessions().await;
        let mut tick = tokio::time::interval(SAFETY_NET);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Caught up first: anything committed before the LISTEN took effect is read here.
        let mut wanted = i64::MAX;
        loop {
            if wanted > self.last_published {
                self.catch_up(&client, &page, &mut notifications).await?;
            }
            wanted = tokio::select! {
                _ = self.shutdown.cancelled() => return Ok(()),
                _ = self.wake.notified() => i64::MAX,
                _ = tick.tick() => i64::MAX,
                notification = notifications.recv() => match notification {
                    // A sign-out on some node: end that session's streams here; nothing to read.
                    Some(n) if n.channel() == SESSIONS_CHANNEL => {
                        self.sign_out(&n);
                        i64::MIN
                    }
                    // The payload is the head at that commit: nothing to read if we are there.
                    Some(n) => n.payload().parse::<i64>().unwrap_or(i64::MAX),
                    None => return Err(StoreError::Unavailable(
                        "the listening connection was lost".into(),
                    )),
                },
            };
        }
    }

    /// Ends the streams of every session this node's streams were opened with that has ended
    /// (signed out while this node was not listening).
    async fn end_ended_sessions(&self) {
        let audience = self.hub.audience().clone();
        for key in self.hub.sessions() {
            if audience.session_ended(&key).await {
                self.hub.end_session(&key);
            }
        }
    }

    /// Ends the streams of the session an ended-session notification names.
    fn sign_out(&self, notification: &Notification) {
        if let Some(key) = session_key_from_hex(notification.payload()) {
            self.hub.end_session(&key);
        }
    }

    /// Publishes everything after `last_published`, in id order.
    async fn catch_up(
        &mut self,
        client: &Client,
        page: &Statement,
        notifications: &mut UnboundedReceiver<Notification>,
    ) -> StoreResult<()> {
        loop {
            let rows = client
                .query(page, &[&self.last_published, &PAGE])
                .await
                .map_err(store_error)?;
            // A sign-out that committed before these events reached this connection before
            // them: apply it first, so its streams never see what followed it. A wake-up read
            // here means one more page, to be sure nothing it announced is left unread.
            let mut woken = false;
            while let Ok(notification) = notifications.try_recv() {
                if notification.channel() == SESSIONS_CHANNEL {
                    self.sign_out(&notification);
                } else {
                    woken = true;
                }
            }
            let audience = self.hub.audience().clone();
            for row in &rows {
                let event = event_from_row(row);
                for revoked in audience.committed(&event) {
                    self.hub.revoke(&revoked.principal, &revoked.topic);
                }
                self.hub
                    .publish(HubEvent::logged(event.id, &event.topic, &event.url));
                self.last_published = event.id;
            }
            self.published.send_replace(self.last_published);
            if (rows.len() as i64) < PAGE && !woken {
                return Ok(());
            }
        }
    }
}

/// The session key an ended session notified, from its hex payload.
fn session_key_from_hex(hex: &str) -> Option<SessionKey> {
    let mut key = [0; 32];
    if hex.len() != 64 || !hex.is_ascii() {
        return None;
    }
    for (byte, pair) in key.iter_mut().zip(hex.as_bytes().chunks(2)) {
        *byte = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(SessionKey(key))
}
