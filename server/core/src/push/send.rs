//! Sending: the sender follows the hub like a stream (every committed event, in commit order,
//! whoever may read it), turns what changed into one push per subscription and topic, and
//! hands them to a bounded queue that a bounded number of requests drain.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, Semaphore};
use web_push_native::{p256, Auth, WebPushBuilder};

use super::keys::VapidKeys;
use super::subscriptions::{StoredSubscription, SubscriptionStore};
use super::PushSettings;
use crate::audience::Audience;
use crate::hub::{Hub, HubEvent};
use crate::metrics::Metrics;

/// How long a push's VAPID signature is valid.
const VAPID_VALID_FOR: Duration = Duration::from_secs(12 * 3600);
/// Events taken from the hub at once, to coalesce a burst into one push per topic.
const BATCH: usize = 256;
/// Longest wait before a retry, whatever `Retry-After` says.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(300);
/// How long the sender goes by the subscriptions it read, unless they changed through this
/// node: a subscription made on another node is pushed to within this.
const REREAD_EVERY: Duration = Duration::from_secs(3);

/// The subscriptions as last read, and when, and at which count of changes.
type Known = (tokio::time::Instant, u64, Arc<Vec<Arc<StoredSubscription>>>);

/// One push on its way.
struct Push {
    subscription: Arc<StoredSubscription>,
    topic: Arc<str>,
    /// The same for every subscription the topic's change goes to.
    payload: Arc<[u8]>,
    attempt: u32,
}

/// The sender's parts, shared by its tasks.
pub(crate) struct Sender {
    keys: Arc<VapidKeys>,
    store: Arc<SubscriptionStore>,
    settings: PushSettings,
    metrics: Arc<Metrics>,
    client: reqwest::Client,
    queue: mpsc::Sender<Push>,
    /// Whether this node sends (on PostgreSQL, the one holding the push lock).
    leader: Arc<AtomicBool>,
    /// The subscriptions as last read (reading all of them for every burst of changes would
    /// cost as much as there are subscriptions, each time).
    known: tokio::sync::Mutex<Option<Known>>,
}

impl Sender {
    /// Starts following `hub` and sending, on the current runtime.
    pub(crate) fn start(
        hub: Hub,
        keys: Arc<VapidKeys>,
        store: Arc<SubscriptionStore>,
        settings: PushSettings,
        metrics: Arc<Metrics>,
        leader: Arc<AtomicBool>,
    ) -> anyhow::Result<()> {
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let (queue, pending) = mpsc::channel(settings.queue.max(1));
        let sender = Arc::new(Self {
            keys,
            store,
            settings,
            metrics,
            client,
            queue,
            leader,
            known: tokio::sync::Mutex::new(None),
        });
        tokio::spawn(sender.clone().drain(pending));
        tokio::spawn(sender.follow(hub));
        Ok(())
    }

    /// Turns committed events into pushes, until the hub shuts down.
    async fn follow(self: Arc<Self>, hub: Hub) {
        let audience = hub.audience().clone();
        let mut watch = hub.watch_all();
        loop {
            let Some(first) = watch.recv().await else {
                if watch.overflowed() {
                    // Pushes are a wake-up, not the record: carry on from what comes next.
                    tracing::warn!("the push sender fell behind; some changes were not pushed");
                    watch = hub.watch_all();
                    continue;
                }
                return;
            };
            let mut batch = vec![first];
            while batch.len() < BATCH {
                match watch.try_recv() {
                    Some(event) => batch.push(event),
                    None => break,
                }
            }
            if self.leader.load(Ordering::Acquire) {
                self.push_changes(&batch, &*audience).await;
            }
        }
    }

    /// One push per subscription and topic for what `events` changed (logged events only).
    async fn push_changes(&self, events: &[Arc<HubEvent>], audience: &dyn Audience) {
        // Per topic, each URL once with its newest event: its ETag, as the stream says it.
        let mut changed: BTreeMap<&str, Vec<(&str, i64)>> = BTreeMap::new();
        for event in events {
            let Some(id) = event.id else { continue };
            let urls = changed.entry(event.topic.as_str()).or_default();
            match urls.iter_mut().find(|(url, _)| *url == event.url) {
                Some(seen) => seen.1 = seen.1.max(id),
                None => urls.push((event.url.as_str(), id)),
            }
        }
        if changed.is_empty() {
            return;
        }
        let Some(subscriptions) = self.subscriptions().await else {
            return;
        };
        // One payload per topic, whoever it goes to.
        let payloads: Vec<(Arc<str>, Arc<[u8]>)> = changed
            .iter()
            .map(|(topic, urls)| {
                let changes: Vec<_> = urls
                    .iter()
                    .map(|(url, id)| {
                        json!({ "url": url, "topic": topic, "etag": format!("\"{id}\"") })
                    })
                    .collect();
                let payload = json!({ "changes": changes }).to_string().into_bytes();
                (Arc::from(*topic), Arc::from(payload))
            })
            .collect();
        for subscription in subscriptions.iter() {
            for (topic, payload) in &payloads {
                // Asked now, as the stream asks at delivery: a subscription outlives access.
                if !subscription.topics.matches(topic)
                    || !audience.may_read(subscription.principal.as_deref(), topic)
                {
                    continue;
                }
                self.enqueue(Push {
                    subscription: subscription.clone(),
                    topic: topic.clone(),
                    payload: payload.clone(),
                    attempt: 1,
                });
            }
        }
    }

    /// The subscriptions, read again when they changed through this node or every
    /// [`REREAD_EVERY`].
    async fn subscriptions(&self) -> Option<Arc<Vec<Arc<StoredSubscription>>>> {
        let mut known = self.known.lock().await;
        let changes = self.store.changes();
        if let Some((read_at, at_changes, all)) = known.as_ref() {
            if *at_changes == changes && read_at.elapsed() < REREAD_EVERY {
                return Some(all.clone());
            }
        }
        match self.store.all().await {
            Ok(all) => {
                let all = Arc::new(all.into_iter().map(Arc::new).collect::<Vec<_>>());
                *known = Some((tokio::time::Instant::now(), changes, all.clone()));
                Some(all)
            }
            Err(error) => {
                tracing::warn!(%error, "reading the push subscriptions failed");
                None
            }
        }
    }

    fn enqueue(&self, push: Push) {
        if self.queue.try_send(push).is_err() {
            self.metrics.push_failed();
        }
        self.metrics
            .set_push_queue_depth(self.queue.max_capacity() - self.queue.capacity());
    }

    /// Sends what is queued, a bounded number at once.
    async fn drain(self: Arc<Self>, mut pending: mpsc::Receiver<Push>) {
        let permits = Arc::new(Semaphore::new(self.settings.concurrency.max(1)));
        while let Some(push) = pending.recv().await {
            self.metrics
                .set_push_queue_depth(self.queue.max_capacity() - self.queue.capacity());
            let Ok(permit) = permits.clone().acquire_owned().await else {
                return;
            };
            let sender = self.clone();
            tokio::spawn(async move {
                sender.send(push).await;
                drop(permit);
            });
        }
    }

    async fn send(self: Arc<Self>, push: Push) {
        let outcome = match self.request(&push) {
            Ok(request) => self.client.execute(request).await,
            Err(error) => {
                tracing::warn!(%error, "a push could not be built");
                self.metrics.push_failed();
                return;
            }
        };
        let status = match outcome {
            Ok(response) => response,
            Err(error) => {
                tracing::debug!(%error, "a push service did not answer");
                return self.retry(push, None);
            }
        };
        match status.status().as_u16() {
            200..=299 => self.metrics.push_sent(),
            404 | 410 => {
                // Gone for good at the push service: unsubscribed, or the browser forgot it.
                match self.store.forget(&push.subscription.endpoint).await {
                    Ok(()) => self.metrics.push_subscription_removed(),
                    Err(error) => tracing::warn!(%error, "forgetting a gone subscription failed"),
                }
            }
            429 | 500..=599 => {
                let wait = retry_after(status.headers());
                self.retry(push, wait);
            }
            other => {
                tracing::debug!(status = other, "a push service refused a push");
                self.metrics.push_failed();
            }
        }
    }

    /// Tries `push` again after `wait` (or a backoff), up to the configured attempts.
    fn retry(self: Arc<Self>, mut push: Push, wait: Option<Duration>) {
        if push.attempt >= self.settings.attempts {
            self.metrics.push_failed();
            return;
        }
        let backoff = Duration::from_secs(1 << push.attempt.min(8));
        let wait = wait.unwrap_or(backoff).min(MAX_RETRY_WAIT);
        push.attempt += 1;
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            self.enqueue(push);
        });
    }

    /// The encrypted, signed request for `push`.
    fn request(&self, push: &Push) -> anyhow::Result<reqwest::Request> {
        let sub = &push.subscription;
        let public = p256::PublicKey::from_sec1_bytes(&sub.p256dh)?;
        let auth = Auth::clone_from_slice(&sub.auth);
        // The builder's duration is the signature's (RFC 8292: at most 24 hours; 12 leaves room
        // for clocks that differ) and its `TTL`, which is set again below from the settings.
        let request = WebPushBuilder::new(sub.endpoint.parse()?, public, auth)
            .with_valid_duration(VAPID_VALID_FOR)
            .with_vapid(self.keys.pair(), &self.settings.contact)
            .build(push.payload.to_vec())?;
        let mut request = reqwest::Request::try_from(request)?;
        let headers = request.headers_mut();
        headers.insert(
            "ttl",
            reqwest::header::HeaderValue::from(self.settings.ttl.as_secs()),
        );
        headers.insert(
            "urgency",
            reqwest::header::HeaderValue::from_static("normal"),
        );
        headers.insert(
            "topic",
            reqwest::header::HeaderValue::from_str(&topic_header(&push.topic))?,
        );
        Ok(request)
    }
}

/// The RFC 8030 `Topic` of a topic: at most 32 characters of the base64url alphabet, the same
/// for the same topic, so that a push service keeps only the newest undelivered push for it.
pub fn topic_header(topic: &str) -> String {
    let digest = Sha256::digest(topic.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..18])
}

/// `Retry-After` in seconds (the HTTP-date form is read as no advice).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_topic_header_is_short_base64url_and_stable() {
        let header = topic_header("lists/general");
        assert_eq!(header.len(), 24);
        assert!(header.len() <= 32);
        assert!(header
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(header, topic_header("lists/general"));
        assert_ne!(header, topic_header("lists/other"));
    }
}
