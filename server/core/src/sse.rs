//! The event-stream side: how events are encoded, and the stream one subscriber reads.
//!
//! A stream starts with `retry:` (once, with jitter, so a restart does not bring every client
//! back in the same second), then either a `reset` or the coalesced replay of what the client
//! missed, then live events. Live events the replay already covered are dropped by id, which is
//! what makes the hand-over from replay to live free of gaps and duplicates. A comment line
//! every heartbeat keeps proxies from closing an idle stream.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use serde_json::json;
use tokio::time::{interval_at, Instant, Interval, MissedTickBehavior};
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::hub::Subscription;
use crate::limits::StreamSlot;

/// The keep-alive comment.
pub const HEARTBEAT: &[u8] = b": keep-alive\n\n";

/// A `changed` event naming the URL that changed. Durable events carry their log id as `id:`
/// and as the ETag the resource now has; ephemeral ones carry neither.
pub fn changed_frame(id: Option<i64>, topic: &str, url: &str) -> Bytes {
    match id {
        Some(id) => {
            let data = json!({ "url": url, "topic": topic, "etag": format!("\"{id}\"") });
            Bytes::from(format!("id: {id}\nevent: changed\ndata: {data}\n\n"))
        }
        None => {
            let data = json!({ "url": url, "topic": topic, "ephemeral": true });
            Bytes::from(format!("event: changed\ndata: {data}\n\n"))
        }
    }
}

/// A `reset`: the client must refetch what it shows. Its id is the head, so the browser resends
/// a valid id on its next reconnect.
pub fn reset_frame(head: i64, reason: &str) -> Bytes {
    let data = json!({ "reason": reason });
    Bytes::from(format!("id: {head}\nevent: reset\ndata: {data}\n\n"))
}

/// A `forbidden`: the subscriber may no longer read `topic`, which this stream now ends. No id:
/// it is not in the log, and resuming must not skip anything because of it.
pub fn forbidden_frame(topic: &str) -> Bytes {
    let data = json!({ "topic": topic });
    Bytes::from(format!("event: forbidden\ndata: {data}\n\n"))
}

/// The `retry:` field, in milliseconds, with jitter.
pub fn retry_frame(base_ms: u64, jitter_ms: u64) -> Bytes {
    let retry = base_ms + rand::random_range(0..=jitter_ms);
    Bytes::from(format!("retry: {retry}\n\n"))
}

/// Everything a stream needs to start.
pub struct StreamPlan {
    /// Frames sent first, in one write: `retry:`, then a reset or the replay.
    pub preface: Vec<Bytes>,
    /// Live events with an id up to this one were already covered by the preface.
    pub covered_through: i64,
    /// The subscriber's registration in the hub.
    pub subscription: Subscription,
    /// Time between keep-alive comments.
    pub heartbeat: Duration,
    /// Cancelled on server shutdown; ends the stream.
    pub shutdown: CancellationToken,
    /// This stream's place in its address's stream count, held as long as the stream lives.
    pub slot: StreamSlot,
}

/// After an overflow, how long a stream may still take to deliver its `reset` before its
/// connection is closed. Its slot and its place in the hub are given back at once.
pub const OVERFLOW_GRACE: Duration = Duration::from_secs(5);

struct State {
    preface: VecDeque<Bytes>,
    covered_through: i64,
    subscription: Subscription,
    heartbeat: Interval,
    /// When the last frame left: the heartbeat is due a period after it. Kept here rather than
    /// resetting the heartbeat's timer on every event, which costs every stream a timer-wheel
    /// update per event.
    last_frame: Instant,
    finished: bool,
    /// Tells the [`StreamWatch`] the body is gone.
    _done: DropGuard,
}

/// What ends a stream from outside its body, for the writer to wait on while a write is
/// pending: a writer blocked by a client that does not read never asks the body for its next
/// frame, so the body alone could not end it. It also holds the stream's slot, so that the
/// slot is given back on overflow even while the write is still blocked.
pub struct StreamWatch {
    overflow: CancellationToken,
    shutdown: CancellationToken,
    body_done: CancellationToken,
    slot: Option<StreamSlot>,
}

impl StreamWatch {
    /// Resolves when the hub dropped the subscription because its buffer overflowed.
    pub async fn overflowed(&self) {
        self.overflow.cancelled().await
    }

    /// Resolves when the server shuts down.
    pub async fn shutdown(&self) {
        self.shutdown.cancelled().await
    }

    /// Gives the stream's slot back to its address.
    pub fn release_slot(&mut self) {
        self.slot = None;
    }

    /// For a writer that cannot wait on the watch itself (actix-web's dispatcher, which stops
    /// polling the body while its write is blocked): runs beside the stream and, when the
    /// stream must end, gives the slot back and cancels `kill`, which makes the connection's
    /// reads and writes fail. At shutdown that is at once; after an overflow, once the stream
    /// had [`OVERFLOW_GRACE`] to deliver its `reset`. Returns when the body ends first.
    pub async fn end_connection_when_due(mut self, kill: Option<CancellationToken>) {
        let (shutdown, body_done) = (self.shutdown.clone(), self.body_done.clone());
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => {}
            _ = body_done.cancelled() => return,
            _ = self.overflow.clone().cancelled_owned() => {
                self.release_slot();
                tokio::select! {
                    biased;
                    _ = shutdown.cancelled() => {}
                    _ = body_done.cancelled() => return,
                    _ = tokio::time::sleep(OVERFLOW_GRACE) => {}
                }
            }
        }
        if let Some(kill) = kill {
            kill.cancel();
        }
    }
}

/// Turns a plan into the body of the `text/event-stream` response and the watch its writer
/// waits on. Dropping the body (the client went away) drops the subscription, which removes it
/// from the hub at once.
pub fn event_stream(
    plan: StreamPlan,
) -> (impl Stream<Item = Result<Bytes, Infallible>>, StreamWatch) {
    let mut heartbeat = interval_at(Instant::now() + plan.heartbeat, plan.heartbeat);
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let preface: Bytes = plan.preface.concat().into();
    let body_done = CancellationToken::new();
    let watch = StreamWatch {
        overflow: plan.subscription.overflow_token(),
        shutdown: plan.shutdown,
        body_done: body_done.clone(),
        slot: Some(plan.slot),
    };
    let state = State {
        preface: VecDeque::from([preface]),
        covered_through: plan.covered_through,
        subscription: plan.subscription,
        heartbeat,
        last_frame: Instant::now(),
        finished: false,
        _done: body_done.drop_guard(),
    };
    let body = futures_util::stream::unfold(state, |mut state| async move {
        let frame = next_frame(&mut state).await?;
        Some((Ok(frame), state))
    });
    (body, watch)
}

async fn next_frame(state: &mut State) -> Option<Bytes> {
    if let Some(frame) = state.preface.pop_front() {
        return Some(frame);
    }
    if state.finished {
        return None;
    }
    loop {
        // Overflowed: the events still buffered are moot (the reset makes the client refetch
        // everything), so the reset goes next, and out quickly once the client reads again.
        if state.subscription.overflowed() {
            state.finished = true;
            let head = state.subscription.hub().head();
            return Some(reset_frame(head, "overflow"));
        }
        // No shutdown branch: shutdown closes the subscription (see `Hub::shutdown`), which
        // ends this body; a token polled here would cost every stream a lock per event.
        tokio::select! {
            biased;
            event = state.subscription.recv() => match event {
                Some(event) => {
                    if event.id.is_some_and(|id| id <= state.covered_through) {
                        continue;
                    }
                    state.last_frame = Instant::now();
                    return Some(event.frame.clone());
                }
                None => {
                    state.finished = true;
                    if state.subscription.overflowed() {
                        let head = state.subscription.hub().head();
                        return Some(reset_frame(head, "overflow"));
                    }
                    return None;
                }
            },
            _ = state.heartbeat.tick() => {
                let due = state.last_frame + state.heartbeat.period();
                if due > Instant::now() {
                    // An event left since: the comment is due a period after it.
                    state.heartbeat.reset_at(due);
                    continue;
                }
                state.last_frame = Instant::now();
                return Some(Bytes::from_static(HEARTBEAT));
            }
        }
    }
}
