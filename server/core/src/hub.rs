//! In-process fan-out of events to the streams of this node.
//!
//! The hub is a cheap, cloneable handle. Stores publish committed events into it in commit
//! order; each stream holds a [`Subscription`]. Every subscriber has a bounded buffer: when a
//! slow reader lets it fill, that subscriber alone is dropped and marked as overflowed (its
//! stream then sends `reset` and ends), so no subscriber ever slows the others or grows a queue
//! without bound.
//!
//! The hub also enforces who may read what, at delivery: each subscriber carries the principal
//! it was opened for, and an event on a restricted topic reaches only subscribers whose
//! principal may read it now (asked of the app's [`Audience`]). A revocation
//! ([`Hub::revoke`]) sends that principal's matching subscribers one `forbidden` frame for the
//! topic and ends the topic for them; a subscriber left with no topic is ended.
//!
//! Subscribers are kept per thread (`Shard`): each thread that serves streams has its own
//! map and a delivery task of its own, so a publish hands each thread the event once and the
//! thread wakes its own streams. Waking thousands of tasks of another thread's runtime one by
//! one (from the store's writer thread) costs a lock and a system call each; this costs one per
//! thread.
//!
//! A stream opened with a session lives no longer than the session: it ends when the session
//! ends ([`Hub::end_session`], on every node) and when it expires (its [`Subscription`]
//! knows the expiry). The browser then reconnects with what its credentials say now.

use std::collections::{HashMap, HashSet};
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::thread::ThreadId;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::time::Sleep;
use tokio_util::sync::CancellationToken;

use crate::audience::{Audience, Everyone, Readers, SessionKey, Viewer};
use crate::sse;
use crate::topic::TopicSet;

/// One event on its way to subscribers, encoded once for all of them.
#[derive(Debug)]
pub struct HubEvent {
    /// The log id, or `None` for an ephemeral event (presence) that is never logged.
    pub id: Option<i64>,
    /// The topic it belongs to.
    pub topic: String,
    /// The URL that changed (empty for a `forbidden`).
    pub url: String,
    /// The event-stream frame, ready to write.
    pub frame: Bytes,
}

impl HubEvent {
    /// A durable `changed` event from the log.
    pub fn logged(id: i64, topic: &str, url: &str) -> Arc<Self> {
        Arc::new(Self {
            id: Some(id),
            topic: topic.to_owned(),
            url: url.to_owned(),
            frame: sse::changed_frame(Some(id), topic, url),
        })
    }

    /// An ephemeral `changed` event: no id, not logged, not replayed.
    pub fn ephemeral(topic: &str, url: &str) -> Arc<Self> {
        Arc::new(Self {
            id: None,
            topic: topic.to_owned(),
            url: url.to_owned(),
            frame: sse::changed_frame(None, topic, url),
        })
    }

    /// The end of `topic` for one subscriber whose membership was revoked.
    pub fn forbidden(topic: &str) -> Arc<Self> {
        Arc::new(Self {
            id: None,
            topic: topic.to_owned(),
            url: String::new(),
            frame: sse::forbidden_frame(topic),
        })
    }
}

struct Subscriber {
    topics: Arc<TopicSet>,
    /// The principal the stream was opened for; `None`: anonymous.
    user: Option<Arc<str>>,
    /// The session the stream was opened with, which ends it when it ends.
    session: Option<SessionKey>,
    /// Topics ended by a revocation: nothing more of them, even if access comes back.
    ended: HashSet<String>,
    /// Gets every event, whoever may read it: nudge's own watchers (push), never a stream.
    unfiltered: bool,
    tx: mpsc::Sender<Arc<HubEvent>>,
    /// Cancelled when the buffer overflowed (a token, so a stream can wait for it).
    overflowed: CancellationToken,
}

/// The subscribers whose streams one thread serves, and the way to that thread's delivery task.
struct Shard {
    subscribers: Mutex<HashMap<u64, Subscriber>>,
    /// To the delivery task on the shard's thread; `None` where that thread has no runtime, and
    /// the publishing thread then delivers itself.
    queue: Option<mpsc::UnboundedSender<Delivery>>,
}

impl Shard {
    fn subscribers(&self) -> MutexGuard<'_, HashMap<u64, Subscriber>> {
        // A panic while holding this lock cannot leave the map half-updated (every operation
        // is a single insert, remove or send), so a poisoned lock is still safe to use.
        self.subscribers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Carries out one delivery on this shard's subscribers, without waiting for any.
    fn deliver(&self, delivery: &Delivery) {
        match delivery {
            Delivery::Event(event, readers) => self.deliver_event(event, readers),
            Delivery::Revoke(principal, topic) => self.revoke(principal, topic),
        }
    }

    /// Sends `event` to every subscriber of this shard that subscribed to its topic and may
    /// read it, as `readers` said when it was published.
    fn deliver_event(&self, event: &Arc<HubEvent>, readers: &Readers) {
        self.subscribers().retain(|_, sub| {
            if !sub.topics.matches(&event.topic)
                || sub.ended.contains(&event.topic)
                || !(sub.unfiltered || readers.allow(sub.user.as_deref()))
            {
                return true;
            }
            deliver(sub, event.clone())
        });
    }

    /// Ends `topic` on `principal`'s subscribers with a `forbidden` frame.
    fn revoke(&self, principal: &str, topic: &str) {
        self.subscribers().retain(|_, sub| {
            let theirs = sub.user.as_deref() == Some(principal);
            if !theirs || !sub.topics.matches(topic) || sub.ended.contains(topic) {
                return true;
            }
            sub.ended.insert(topic.to_owned());
            // Dropping a subscriber with nothing left closes its channel: the stream sends
            // what is buffered, `forbidden` last, and ends.
            deliver(sub, HubEvent::forbidden(topic)) && !sub.topics.only_exact_in(&sub.ended)
        });
    }
}

/// What a shard's delivery task carries out, in the order published.
enum Delivery {
    /// An event, with who may read it as of its publication.
    Event(Arc<HubEvent>, Readers),
    /// The end of a topic for a principal's streams.
    Revoke(Arc<str>, Arc<str>),
}

/// Delivers what is published to the subscribers of `shard`, on the shard's own thread.
async fn deliver_on_this_thread(
    inner: Weak<Inner>,
    shard: Weak<Shard>,
    mut queue: mpsc::UnboundedReceiver<Delivery>,
) {
    while let Some(delivery) = queue.recv().await {
        let (Some(_inner), Some(shard)) = (inner.upgrade(), shard.upgrade()) else {
            return;
        };
        shard.deliver(&delivery);
    }
}

struct Inner {
    /// One shard per thread that has subscribed.
    shards: Mutex<HashMap<ThreadId, Arc<Shard>>>,
    next_id: AtomicU64,
    buffer: usize,
    head: AtomicI64,
    published: AtomicU64,
    shutdown: CancellationToken,
    audience: Arc<dyn Audience>,
    /// Sessions that ended in the last [`SIGNED_OUT_KEPT`], with when: a stream whose
    /// session was looked up just before its sign-out, and subscribes just after, ends at once.
    signed_out: Mutex<Vec<(std::time::Instant, SessionKey)>>,
}

/// How long a sign-out is remembered for streams still being opened (far longer than the
/// moment between looking a session up and subscribing).
const SIGNED_OUT_KEPT: std::time::Duration = std::time::Duration::from_secs(60);

/// A handle to the fan-out state; clones share it.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

impl Hub {
    /// A hub whose subscribers each buffer at most `buffer` events, for an app where anyone
    /// may read anything.
    pub fn new(buffer: usize) -> Self {
        Self::with_audience(buffer, Arc::new(Everyone))
    }

    /// A hub that asks `audience` who may read a restricted topic, at every delivery.
    pub fn with_audience(buffer: usize, audience: Arc<dyn Audience>) -> Self {
        Self {
            inner: Arc::new(Inner {
                shards: Mutex::new(HashMap::new()),
                next_id: AtomicU64::new(1),
                buffer: buffer.max(1),
                head: AtomicI64::new(0),
                published: AtomicU64::new(0),
                shutdown: CancellationToken::new(),
                audience,
                signed_out: Mutex::default(),
            }),
        }
    }

    fn shards(&self) -> MutexGuard<'_, HashMap<ThreadId, Arc<Shard>>> {
        // Each change is one insert: a poisoned lock is still consistent.
        self.inner
            .shards
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Every shard, for the operations that concern all subscribers.
    fn all_shards(&self) -> Vec<Arc<Shard>> {
        self.shards().values().cloned().collect()
    }

    /// The shard of the calling thread, made (with its delivery task, where the thread has a
    /// runtime) the first time the thread subscribes.
    fn this_threads_shard(&self) -> Arc<Shard> {
        let mut shards = self.shards();
        let shard = shards
            .entry(std::thread::current().id())
            .or_insert_with(|| {
                let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                    return Arc::new(Shard {
                        subscribers: Mutex::default(),
                        queue: None,
                    });
                };
                let (tx, rx) = mpsc::unbounded_channel();
                let shard = Arc::new(Shard {
                    subscribers: Mutex::default(),
                    queue: Some(tx),
                });
                runtime.spawn(deliver_on_this_thread(
                    Arc::downgrade(&self.inner),
                    Arc::downgrade(&shard),
                    rx,
                ));
                shard
            });
        shard.clone()
    }

    fn signed_out(&self) -> MutexGuard<'_, Vec<(std::time::Instant, SessionKey)>> {
        // Each change is one push or retain: a poisoned lock is still consistent.
        self.inner
            .signed_out
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers an anonymous subscriber. Register *before* reading the log for a replay, so
    /// that nothing committed in between is missed (the stream drops live events it already
    /// replayed).
    pub fn subscribe(&self, topics: Arc<TopicSet>) -> Subscription {
        self.subscribe_as(topics, &Viewer::default())
    }

    /// [`Hub::subscribe`] for `viewer`: its principal is asked about at delivery, and a stream
    /// opened with a session ends when the session ends ([`Hub::end_session`]) or expires.
    pub fn subscribe_as(&self, topics: Arc<TopicSet>, viewer: &Viewer) -> Subscription {
        self.register(topics, viewer, false)
    }

    /// Every event of every topic, whoever may read it, in the order published: for nudge's
    /// own watchers of the log (push), which check each reader themselves. Never for a stream.
    pub fn watch_all(&self) -> Subscription {
        self.register(Arc::new(TopicSet::everything()), &Viewer::default(), true)
    }

    fn register(&self, topics: Arc<TopicSet>, viewer: &Viewer, unfiltered: bool) -> Subscription {
        let user = viewer.principal.clone();
        let session = viewer.session;
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        // The overflow policy lives here: a bounded channel, and `try_send` in `publish`.
        let (tx, rx) = mpsc::channel(self.inner.buffer);
        let overflowed = CancellationToken::new();
        // Lock order: the sign-outs, then the subscribers (as in `end_session`).
        let signed_out = self.signed_out();
        if let Some(session) = &session {
            if signed_out.iter().any(|(_, key)| *key == session.key) {
                // Never registered: the channel is closed and the stream ends at once.
                drop(tx);
                return Subscription {
                    id,
                    rx,
                    overflowed,
                    expiry: None,
                    shard: None,
                    hub: self.clone(),
                };
            }
        }
        let shard = self.this_threads_shard();
        {
            let mut subscribers = shard.subscribers();
            // Checked under the shard's lock, which `shutdown` takes after cancelling: a
            // subscriber is either refused here or cleared there.
            if self.inner.shutdown.is_cancelled() {
                drop(tx);
            } else {
                subscribers.insert(
                    id,
                    Subscriber {
                        topics,
                        user,
                        session: session.as_ref().map(|s| s.key),
                        ended: HashSet::new(),
                        unfiltered,
                        tx,
                        overflowed: overflowed.clone(),
                    },
                );
            }
        }
        Subscription {
            id,
            rx,
            overflowed,
            expiry: session.map(|s| Box::pin(tokio::time::sleep_until(s.expires_at))),
            shard: Some(shard),
            hub: self.clone(),
        }
    }

    /// The sessions this hub's streams were opened with, each once.
    pub fn sessions(&self) -> Vec<SessionKey> {
        let unique: HashSet<SessionKey> = self
            .all_shards()
            .iter()
            .flat_map(|shard| {
                let subscribers = shard.subscribers();
                subscribers
                    .values()
                    .filter_map(|sub| sub.session)
                    .collect::<Vec<_>>()
            })
            .collect();
        unique.into_iter().collect()
    }

    /// Ends every stream opened with the session `key` (it ended: a sign-out). Each sends what
    /// is already queued for it and ends; returns how many there were.
    pub fn end_session(&self, key: &SessionKey) -> usize {
        let mut signed_out = self.signed_out();
        let now = std::time::Instant::now();
        signed_out.retain(|(at, _)| now.duration_since(*at) < SIGNED_OUT_KEPT);
        signed_out.push((now, *key));
        let mut ended = 0;
        for shard in self.all_shards() {
            let mut subscribers = shard.subscribers();
            let before = subscribers.len();
            // Dropping a subscriber closes its channel, which ends its stream.
            subscribers.retain(|_, sub| sub.session.as_ref() != Some(key));
            ended += before - subscribers.len();
        }
        ended
    }

    /// Sends an event to every matching subscriber that may read it, without waiting for any.
    pub fn publish(&self, event: Arc<HubEvent>) {
        if let Some(id) = event.id {
            self.inner.head.fetch_max(id, Ordering::AcqRel);
            self.inner.published.fetch_add(1, Ordering::Relaxed);
        }
        // Who may read it is decided now, in the order of publication (commit order), not
        // when a shard's task gets to it: the audience may have changed by then.
        let readers = self.inner.audience.readers(&event.topic);
        self.send_to_shards(Delivery::Event(event, readers));
    }

    /// Hands `delivery` to every shard's task, or carries it out from here where a shard has
    /// none (no runtime, or it has stopped). Each thread's task delivers to its own streams,
    /// in the order sent.
    fn send_to_shards(&self, delivery: Delivery) {
        for shard in self.shards().values() {
            let queued = shard.queue.as_ref().is_some_and(|queue| {
                let copy = match &delivery {
                    Delivery::Event(event, readers) => {
                        Delivery::Event(event.clone(), readers.clone())
                    }
                    Delivery::Revoke(principal, topic) => {
                        Delivery::Revoke(principal.clone(), topic.clone())
                    }
                };
                queue.send(copy).is_ok()
            });
            if !queued {
                shard.deliver(&delivery);
            }
        }
    }

    /// The audience this hub delivers by.
    pub fn audience(&self) -> &Arc<dyn Audience> {
        &self.inner.audience
    }

    /// Ends `topic` on `principal`'s streams, which may no longer read it: each matching stream
    /// gets one `forbidden` frame for the topic and nothing more of it, even if access comes
    /// back (the browser reconnects to find out); a stream left with no topic ends. Call it in
    /// commit order, after the audience says no and before the events committed after the
    /// revocation are published (a log writer does, for the revocations
    /// [`Audience::committed`] returns).
    ///
    /// It goes to each thread's streams in order with the events published before it, so that
    /// what the principal could read when it was committed still reaches them.
    pub fn revoke(&self, principal: &str, topic: &str) {
        self.send_to_shards(Delivery::Revoke(Arc::from(principal), Arc::from(topic)));
    }

    /// The newest durable event id this hub has seen (or was told of at start).
    pub fn head(&self) -> i64 {
        self.inner.head.load(Ordering::Acquire)
    }

    /// How many durable events this hub has published since it was made.
    pub fn published_total(&self) -> u64 {
        self.inner.published.load(Ordering::Relaxed)
    }

    /// Tells the hub the log's head at start-up.
    pub fn set_head(&self, head: i64) {
        self.inner.head.fetch_max(head, Ordering::AcqRel);
    }

    /// How many streams are subscribed right now.
    pub fn subscriber_count(&self) -> usize {
        self.all_shards()
            .iter()
            .map(|shard| shard.subscribers().len())
            .sum()
    }

    /// Ends every stream (graceful shutdown): closing each subscriber's channel ends its body
    /// once it has sent what is queued, and a stream whose write is blocked is ended by its
    /// watch of the shutdown token. Streams no longer poll that token per event.
    pub fn shutdown(&self) {
        self.inner.shutdown.cancel();
        for shard in self.all_shards() {
            shard.subscribers().clear();
        }
    }

    /// Cancelled when the server shuts down.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.inner.shutdown.clone()
    }
}

/// Queues `event` for `sub`; false when the subscriber must be dropped (overflow or gone).
fn deliver(sub: &Subscriber, event: Arc<HubEvent>) -> bool {
    // The overflow policy: a full buffer drops this subscriber alone, marked as overflowed.
    match sub.tx.try_send(event) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Full(_)) => {
            sub.overflowed.cancel();
            false
        }
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    }
}

/// One stream's registration; dropping it forgets the subscriber at once.
pub struct Subscription {
    id: u64,
    rx: mpsc::Receiver<Arc<HubEvent>>,
    overflowed: CancellationToken,
    /// The session's expiry, for a stream opened with one (boxed: streams without a session,
    /// the many, pay one pointer).
    expiry: Option<Pin<Box<Sleep>>>,
    /// Where the hub keeps it (`None`: never registered).
    shard: Option<Arc<Shard>>,
    hub: Hub,
}

impl Subscription {
    /// The next event; `None` once the hub dropped this subscriber or its session expired.
    pub async fn recv(&mut self) -> Option<Arc<HubEvent>> {
        let Some(expiry) = self.expiry.as_mut() else {
            return self.rx.recv().await;
        };
        tokio::select! {
            biased;
            () = expiry.as_mut() => {
                // Nothing more for this session, queued events included.
                self.forget();
                self.rx.close();
                None
            }
            event = self.rx.recv() => event,
        }
    }

    /// The next event if one is queued already, without waiting.
    pub fn try_recv(&mut self) -> Option<Arc<HubEvent>> {
        self.rx.try_recv().ok()
    }

    /// Whether the hub dropped this subscriber because its buffer was full. Streams ask on
    /// every event, so the token (which takes a lock to read) is read only once the channel is
    /// closed (an atomic read): an overflow cancels the token, then drops the sender.
    pub fn overflowed(&self) -> bool {
        self.rx.is_closed() && self.overflowed.is_cancelled()
    }

    /// Cancelled when the hub drops this subscriber because its buffer was full: a stream
    /// whose write is blocked waits for this to end without being polled for its next frame.
    pub fn overflow_token(&self) -> CancellationToken {
        self.overflowed.clone()
    }

    /// The hub this subscription belongs to.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }
}

impl Subscription {
    /// Removes this subscriber from the hub.
    fn forget(&self) {
        if let Some(shard) = &self.shard {
            shard.subscribers().remove(&self.id);
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.forget();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audience::StreamSession;
    use tokio::time::Instant;

    fn topics(t: &str) -> Arc<TopicSet> {
        Arc::new(TopicSet::parse([t]).unwrap())
    }

    #[tokio::test]
    async fn delivers_to_matching_subscribers_only() {
        let hub = Hub::new(8);
        let mut general = hub.subscribe(topics("lists/general"));
        let mut other = hub.subscribe(topics("lists/other"));
        hub.publish(HubEvent::logged(1, "lists/general", "/api/lists/general"));
        assert_eq!(general.recv().await.unwrap().id, Some(1));
        assert!(other.rx.try_recv().is_err());
    }

    #[tokio::test]
    async fn a_full_buffer_drops_only_that_subscriber() {
        let hub = Hub::new(2);
        let slow = hub.subscribe(topics("lists/*"));
        let mut fast = hub.subscribe(topics("lists/*"));
        for id in 1..=3 {
            hub.publish(HubEvent::logged(id, "lists/a", "/x"));
            assert_eq!(fast.recv().await.unwrap().id, Some(id));
        }
        assert!(slow.overflowed());
        assert!(!fast.overflowed());
        assert_eq!(hub.subscriber_count(), 1);
    }

    /// Topic `t/x` is readable by ann alone; everything else by anyone.
    struct OnlyAnnReadsX;

    impl Audience for OnlyAnnReadsX {
        fn readers(&self, topic: &str) -> Readers {
            if topic == "t/x" {
                Readers::only(|principal| principal == Some("ann"))
            } else {
                Readers::Anyone
            }
        }
    }

    fn as_user(name: &str) -> Viewer {
        Viewer::signed_in(name)
    }

    #[tokio::test]
    async fn restricted_events_reach_those_the_audience_allows() {
        let hub = Hub::with_audience(8, Arc::new(OnlyAnnReadsX));
        let mut ann = hub.subscribe_as(topics("t/*"), &as_user("ann"));
        let mut bob = hub.subscribe_as(topics("t/*"), &as_user("bob"));
        let mut nobody = hub.subscribe(topics("t/*"));
        hub.publish(HubEvent::logged(2, "t/x", "/x"));
        hub.publish(HubEvent::logged(3, "t/y", "/y"));
        assert_eq!(ann.recv().await.unwrap().id, Some(2));
        assert_eq!(bob.recv().await.unwrap().id, Some(3));
        assert_eq!(nobody.recv().await.unwrap().id, Some(3));
    }

    #[tokio::test]
    async fn a_revocation_ends_the_topic_and_a_stream_left_with_none() {
        let hub = Hub::new(8);
        let mut both = hub.subscribe_as(
            Arc::new(TopicSet::parse(["lists/x", "lists/y"]).unwrap()),
            &as_user("ann"),
        );
        let mut only_x = hub.subscribe_as(topics("lists/x"), &as_user("ann"));
        let mut bobs = hub.subscribe_as(topics("lists/x"), &as_user("bob"));
        hub.revoke("ann", "lists/x");
        hub.publish(HubEvent::logged(3, "lists/x", "/x"));
        hub.publish(HubEvent::logged(4, "lists/y", "/y"));
        let forbidden = both.recv().await.unwrap();
        assert_eq!((forbidden.id, forbidden.topic.as_str()), (None, "lists/x"));
        assert_eq!(both.recv().await.unwrap().id, Some(4));
        assert_eq!(only_x.recv().await.unwrap().topic, "lists/x");
        assert!(only_x.recv().await.is_none(), "nothing left: ended");
        assert!(!only_x.overflowed());
        assert_eq!(
            bobs.recv().await.unwrap().id,
            Some(3),
            "others keep the topic"
        );
    }

    fn session(byte: u8, expires_in: std::time::Duration) -> Viewer {
        Viewer {
            principal: Some(Arc::from("ann")),
            session: Some(StreamSession {
                key: SessionKey([byte; 32]),
                expires_at: Instant::now() + expires_in,
            }),
        }
    }

    #[tokio::test]
    async fn a_sign_out_ends_that_sessions_streams_only() {
        let hub = Hub::new(8);
        let day = std::time::Duration::from_secs(86_400);
        let mut signed_out = hub.subscribe_as(topics("lists/*"), &session(1, day));
        let mut other = hub.subscribe_as(topics("lists/*"), &session(2, day));
        let mut anonymous = hub.subscribe(topics("lists/*"));
        assert_eq!(hub.end_session(&SessionKey([1; 32])), 1);
        hub.publish(HubEvent::logged(1, "lists/a", "/a"));
        assert!(signed_out.recv().await.is_none(), "ended");
        assert_eq!(other.recv().await.unwrap().id, Some(1));
        assert_eq!(anonymous.recv().await.unwrap().id, Some(1));
        assert_eq!(hub.subscriber_count(), 2);
        // Looked up before the sign-out, subscribing after it: ended at once all the same.
        let mut late = hub.subscribe_as(topics("lists/*"), &session(1, day));
        hub.publish(HubEvent::logged(2, "lists/a", "/a"));
        assert!(late.recv().await.is_none(), "ended");
        assert_eq!(hub.subscriber_count(), 2);
    }

    #[tokio::test]
    async fn a_stream_ends_when_its_session_expires() {
        let hub = Hub::new(8);
        let soon = std::time::Duration::from_millis(200);
        let mut sub = hub.subscribe_as(topics("lists/*"), &session(1, soon));
        hub.publish(HubEvent::logged(1, "lists/a", "/a"));
        assert_eq!(sub.recv().await.unwrap().id, Some(1));
        let ended = tokio::time::timeout(std::time::Duration::from_secs(10), sub.recv()).await;
        assert!(
            ended.expect("ended within the wait").is_none(),
            "ended at the expiry"
        );
        hub.publish(HubEvent::logged(2, "lists/a", "/a"));
        assert!(sub.recv().await.is_none(), "and stays ended");
        assert_eq!(hub.subscriber_count(), 0, "forgotten by the hub");
    }

    #[test]
    fn dropping_a_subscription_forgets_it() {
        let hub = Hub::new(2);
        let sub = hub.subscribe(topics("a"));
        assert_eq!(hub.subscriber_count(), 1);
        drop(sub);
        assert_eq!(hub.subscriber_count(), 0);
    }
}
