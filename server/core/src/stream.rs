//! `GET /api/events?topic=…` (at the path the app chooses): the light event stream.
//!
//! The subscription is registered before the log is read, so an event committed while the
//! replay is being read is either in the replay or arrives live (and is dropped by id if it
//! is in both). The replay is coalesced per URL: each URL once, with its newest id.
//!
//! Restricted topics: an exact topic the caller may not read (the app's [`Audience`] says)
//! refuses the whole stream before it starts (401 anonymous, 403 otherwise), checked after the
//! subscription is registered so that a revocation in between still reaches it as
//! `forbidden`. Prefix selectors are not refused; the hub delivers, and the replay keeps, only
//! what the caller may read at that moment.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use actix_web::http::header::HeaderName;
use actix_web::{web, HttpRequest, HttpResponse};

use crate::audience::{self, Audience, Credentials};
use crate::error::{self, ApiError};
use crate::sse::{changed_frame, event_stream, reset_frame, retry_frame, StreamPlan};
use crate::store::LoggedEvent;
use crate::stream_connection::ConnectionKill;
use crate::topic::TopicSet;
use crate::Nudge;

/// The header EventSource resends its last id in.
pub const LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");
/// Reconnection delay the browser is told, before jitter.
const RETRY_BASE_MS: u64 = 1_000;
/// Up to this much is added at random, spreading reconnections after a restart.
const RETRY_JITTER_MS: u64 = 4_000;

/// Mounts the stream at `path`.
pub fn configure(cfg: &mut web::ServiceConfig, path: &str) {
    cfg.service(
        web::resource(path)
            .route(web::get().to(subscribe))
            .default_service(web::route().to(error::method_not_allowed)),
    );
}

/// The headers of every event-stream response (besides the security headers), on either path
/// that serves one.
pub const EVENT_STREAM_HEADERS: [(&str, &str); 3] = [
    ("content-type", "text/event-stream"),
    ("cache-control", "no-store"),
    // Tells nginx (and proxies that follow it) not to buffer the stream.
    ("x-accel-buffering", "no"),
];

/// What opening a stream reads from its request, whichever HTTP path carried it (actix-web's,
/// or a connection dedicated to one stream: [`crate::stream_connection`]).
pub struct StreamRequest {
    /// The query's pairs, in order.
    pub query: Vec<(String, String)>,
    /// The `Last-Event-ID` header, if any (it wins over the `lastEventId` parameter).
    pub last_event_id: Option<String>,
    /// What could say who is asking, for the app's [`Audience::identify`].
    pub credentials: Credentials,
    /// The client's address, for the cap on streams per address.
    pub client_ip: Option<IpAddr>,
}

async fn subscribe(
    req: HttpRequest,
    query: web::Query<Vec<(String, String)>>,
    state: web::Data<Nudge>,
) -> Result<HttpResponse, ApiError> {
    let request = StreamRequest {
        query: query.into_inner(),
        last_event_id: req
            .headers()
            .get(LAST_EVENT_ID)
            .map(|v| v.to_str().unwrap_or("not-ascii").to_owned()),
        credentials: Credentials::from_request(&req),
        client_ip: state.limits().client_ip(&req),
    };
    let plan = open_stream(&state, request).await?;
    let (body, watch) = event_stream(plan);
    // actix-web stops polling the body while a write is blocked, so the watch runs beside it;
    // on a plain connection it can end the connection (TLS ones have no switch: it gives the
    // slot back on overflow, and the body ends when next polled).
    let kill = req.conn_data::<ConnectionKill>().map(|kill| kill.0.clone());
    actix_web::rt::spawn(watch.end_connection_when_due(kill));
    let mut response = HttpResponse::Ok();
    for header in EVENT_STREAM_HEADERS {
        response.insert_header(header);
    }
    Ok(response.streaming(body))
}

/// Checks a stream request and subscribes it: the topics, who is asking and whether they may
/// read them, the per-address cap; then the preface (`retry:`, and a reset or the replay).
/// Everything that can refuse the stream happens here, before a byte of it is sent.
pub async fn open_stream(state: &Nudge, request: StreamRequest) -> Result<StreamPlan, ApiError> {
    let StreamRequest {
        query,
        last_event_id,
        credentials,
        client_ip,
    } = request;
    // First, before anything costs: a client looping reconnections is refused here.
    state.limits().check_stream_open(client_ip)?;
    let topics = TopicSet::parse(
        query
            .iter()
            .filter(|(k, _)| k == "topic")
            .map(|(_, v)| v.as_str()),
    )?;
    // The header wins: it is what the browser sends on its own reconnections.
    let last_event_id = last_event_id.or_else(|| {
        query
            .iter()
            .find(|(k, _)| k == "lastEventId")
            .map(|(_, v)| v.clone())
    });

    let audience: &dyn Audience = &**state.hub().audience();
    let viewer = audience.identify(&credentials).await?;
    let user = viewer.principal.as_deref();
    let slot = state.limits().open_stream(client_ip)?;
    let topics = Arc::new(topics);
    // Opened with a session, it ends with it (sign-out or expiry).
    let subscription = state.hub().subscribe_as(topics.clone(), &viewer);
    if topics.exact().any(|topic| !audience.may_read(user, topic)) {
        return Err(audience::refusal(user));
    }
    let mut preface = vec![retry_frame(RETRY_BASE_MS, RETRY_JITTER_MS)];
    let mut covered_through = 0;
    if let Some(raw) = last_event_id.filter(|raw| !raw.is_empty()) {
        match parse_last_event_id(&raw) {
            Err(_) => {
                let range = state.log().log_range().await?;
                covered_through = range.head;
                preface.push(reset_frame(range.head, "invalid_id"));
            }
            Ok(id) => {
                let max = match state.settings().max_replay_events {
                    0 => usize::MAX,
                    max => max,
                };
                // The range and the events come from one snapshot: an id the range allows
                // lost nothing to retention before the events were read.
                let replay = state.log().replay(id, &topics, max).await?;
                let range = replay.range;
                // Everything up to the head is in the replay (or the reset stands for it), so
                // a live event at or below it is a duplicate.
                covered_through = range.head;
                if id > range.head {
                    preface.push(reset_frame(range.head, "ahead_of_log"));
                } else if id < range.pruned_through {
                    // Resuming after `pruned_through` itself needs only events above it, all
                    // kept; below it, the event numbered `pruned_through` is gone.
                    preface.push(reset_frame(range.head, "older_than_log"));
                } else if !replay.complete {
                    preface.push(reset_frame(range.head, "too_many_missed"));
                } else {
                    let mut missed = replay.events;
                    missed.retain(|e| audience.may_read(user, &e.topic));
                    preface.extend(
                        coalesce(missed)
                            .iter()
                            .map(|e| changed_frame(Some(e.id), &e.topic, &e.url)),
                    );
                }
            }
        }
    }

    Ok(StreamPlan {
        preface,
        covered_through,
        subscription,
        heartbeat: state.settings().heartbeat,
        // Shared by every stream, and polled only by a write that is blocked (and by the task
        // that ends an actix-web connection, once): streams do not poll it per event, since
        // shutdown closes their subscriptions (see `Hub::shutdown`).
        shutdown: state.hub().shutdown_token(),
        slot,
    })
}

/// The id a `Last-Event-ID` header (or `lastEventId` parameter) names: the browser resends the
/// `id:` it last saw, which the server wrote as a decimal; surrounding whitespace is forgiven.
pub fn parse_last_event_id(raw: &str) -> Result<i64, std::num::ParseIntError> {
    raw.trim().parse()
}

/// Keeps each URL once, at its newest event, in id order.
fn coalesce(events: Vec<LoggedEvent>) -> Vec<LoggedEvent> {
    let mut newest: HashMap<String, LoggedEvent> = HashMap::new();
    for event in events {
        newest.insert(event.url.clone(), event);
    }
    let mut kept: Vec<_> = newest.into_values().collect();
    kept.sort_by_key(|e| e.id);
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(id: i64, url: &str) -> LoggedEvent {
        LoggedEvent {
            id,
            topic: "t".into(),
            url: url.into(),
            note: None,
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Any text is either an id or refused, never a panic.
        #[test]
        fn any_last_event_id_parses_or_is_refused(raw in "\\PC{0,24}") {
            let _ = parse_last_event_id(&raw);
        }

        /// Every id the server writes reads back as itself, with or without the whitespace
        /// around it that a header may carry.
        #[test]
        fn a_written_id_round_trips(id in proptest::prelude::any::<i64>(), pad in "[ \t]{0,2}") {
            proptest::prop_assert_eq!(parse_last_event_id(&id.to_string()), Ok(id));
            proptest::prop_assert_eq!(parse_last_event_id(&format!("{pad}{id}{pad}")), Ok(id));
        }
    }

    #[test]
    fn coalesces_per_url_keeping_the_newest() {
        let kept = coalesce(vec![
            ev(1, "/a"),
            ev(2, "/b"),
            ev(3, "/a"),
            ev(4, "/c"),
            ev(5, "/b"),
        ]);
        let ids: Vec<_> = kept.iter().map(|e| (e.id, e.url.as_str())).collect();
        assert_eq!(ids, vec![(3, "/a"), (4, "/c"), (5, "/b")]);
    }
}
