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
//! A membership change (a private room, a member added or removed) is logged as an event with
//! a row of `access_changes` beside it; the follower applies it to the hub's access view just
//! before it publishes that event, so every node changes its view in commit order, and a
//! revocation made on any node ends the topic on this node's streams before anything committed
//! after it is delivered. It then tells `published` how far it got, which is what an accounts
//! call on this node waits for before it answers.
//!
//! A sign-out on any node `NOTIFY`s [`SESSIONS_CHANNEL`] with the session's token hash, and the
//! follower ends that session's streams on this node. Such a notification is not in the log: a
//! node whose listening connection was down at that moment missed it, so after reconnecting
//! the follower asks which of its streams' sessions still exist and ends the others.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::{watch, Notify};
use tokio_postgres::{Client, Notification, Row, Statement};
use tokio_util::sync::CancellationToken;

use super::conn::{store_error, Connector};
use super::read::event_from_row;
use super::{NOTIFY_CHANNEL, SESSIONS_CHANNEL};
use crate::access::AccessChange;
use crate::hub::{Hub, HubEvent};
use crate::store::accounts::TokenHash;
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
            .prepare(
                "SELECT e.id, e.topic, e.url, a.kind, a.room, a.user_name \
                 FROM events e LEFT JOIN access_changes a ON a.event_id = e.id \
                 WHERE e.id > $1 ORDER BY e.id LIMIT $2",
            )
            .await
            .map_err(store_error)?;
        *backoff = MIN_BACKOFF;
        // Listening again after a gap: a sign-out notified meanwhile was missed.
        self.end_signed_out_sessions(&client).await?;
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

    /// Ends the streams of every session this node's streams were opened with that no longer
    /// exists (signed out while this node was not listening).
    async fn end_signed_out_sessions(&self, client: &Client) -> StoreResult<()> {
        let held = self.hub.sessions();
        if held.is_empty() {
            return Ok(());
        }
        let hashes: Vec<&[u8]> = held.iter().map(|h| &h.0[..]).collect();
        let rows = client
            .query(
                "SELECT token_hash FROM sessions WHERE token_hash = ANY($1)",
                &[&hashes],
            )
            .await
            .map_err(store_error)?;
        let live: HashSet<Vec<u8>> = rows.iter().map(|r| r.get(0)).collect();
        for hash in held.iter().filter(|h| !live.contains(&h.0[..])) {
            self.hub.end_session(hash);
        }
        Ok(())
    }

    /// Ends the streams of the session a sign-out notification names.
    fn sign_out(&self, notification: &Notification) {
        if let Some(hash) = token_hash_from_hex(notification.payload()) {
            self.hub.end_session(&hash);
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
            for row in &rows {
                let event = event_from_row(row);
                if let Some(change) = access_change(row, event.id) {
                    self.hub.change_access(&change);
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

/// The token hash a sign-out notified, from its hex payload.
fn token_hash_from_hex(hex: &str) -> Option<TokenHash> {
    let mut hash = [0; 32];
    if hex.len() != 64 || !hex.is_ascii() {
        return None;
    }
    for (byte, pair) in hash.iter_mut().zip(hex.as_bytes().chunks(2)) {
        *byte = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(TokenHash(hash))
}

/// The membership change logged with the event of `row`, if any.
fn access_change(row: &Row, event_id: i64) -> Option<AccessChange> {
    let kind: Option<&str> = row.get(3);
    let (room, user): (String, String) = (row.get::<_, Option<_>>(4)?, row.get::<_, Option<_>>(5)?);
    Some(match kind? {
        "private" => AccessChange::MadePrivate {
            room,
            creator: user,
            event_id,
        },
        "add" => AccessChange::Granted {
            room,
            user,
            event_id,
        },
        _ => AccessChange::Revoked {
            room,
            user,
            event_id,
        },
    })
}
