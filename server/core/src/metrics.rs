//! Metrics in the Prometheus text format at `GET /metrics`: open event streams, events
//! published, write latency, store errors, responses by route and status (so 200s and 304s
//! of the cacheable reads can be told apart), and refusals by their error code.
//!
//! Every label comes from a fixed set, so that no client can grow the exposition: methods are
//! the standard ones (any other is answered 501 before it is counted, as `OTHER`), routes are
//! patterns, codes are the server's own. The middleware here is also the one place where every
//! response of the actix-web app is seen: refusals returned as errors by inner middleware are
//! turned into responses here (so they are counted and logged with their code), and a 4xx that
//! actix-web or actix-files answered in plain text is given the JSON error body.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse, ResponseError};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::error::{json_client_error, json_error_response, ApiError, ErrorCode};
use crate::hub::Hub;

/// The labels of a counted response.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResponseLabels {
    /// The HTTP method, one of [`KNOWN_METHODS`] or `OTHER` (see [`method_label`]).
    pub method: String,
    /// The matched route pattern (`/api/lists/{room}/recent`), never the raw path, so that the
    /// number of series stays bounded.
    pub route: String,
    /// The status code.
    pub status: u16,
}

/// Every metric of one server, cheap to share.
pub struct Metrics {
    registry: Registry,
    responses: Family<ResponseLabels, Counter>,
    refusals: Family<RefusalLabels, Counter>,
    streams_open: Gauge,
    events_published: Counter,
    /// Events published as the hub last reported them, to turn its total into increments.
    events_seen: AtomicU64,
    write_seconds: Histogram,
    store_errors: Counter,
    pushes_sent: Counter,
    pushes_failed: Counter,
    push_subscriptions_removed: Counter,
    push_queue_depth: Gauge,
}

impl Metrics {
    /// A registry with every metric registered.
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("nudge");
        let responses = Family::<ResponseLabels, Counter>::default();
        registry.register(
            "http_responses",
            "HTTP responses by route and status",
            responses.clone(),
        );
        let refusals = Family::<RefusalLabels, Counter>::default();
        registry.register(
            "http_refusals",
            "Error responses (4xx and 5xx) by status and error code",
            refusals.clone(),
        );
        let streams_open = Gauge::default();
        registry.register(
            "event_streams_open",
            "Event streams open now",
            streams_open.clone(),
        );
        let events_published = Counter::default();
        registry.register(
            "events_published",
            "Durable events handed to subscribers",
            events_published.clone(),
        );
        // 0.1 ms to about 3 s: an fsync is the floor, a stalled disk the ceiling.
        let write_seconds = Histogram::new(exponential_buckets(0.0001, 2.0, 16));
        registry.register(
            "write_duration_seconds",
            "Time for a write to become durable",
            write_seconds.clone(),
        );
        let store_errors = Counter::default();
        registry.register(
            "store_errors",
            "Store operations that failed",
            store_errors.clone(),
        );
        let pushes_sent = Counter::default();
        registry.register(
            "pushes_sent",
            "Web Pushes a push service accepted",
            pushes_sent.clone(),
        );
        let pushes_failed = Counter::default();
        registry.register(
            "pushes_failed",
            "Web Pushes given up on (refused, retried to the bound, or dropped from a full queue)",
            pushes_failed.clone(),
        );
        let push_subscriptions_removed = Counter::default();
        registry.register(
            "push_subscriptions_removed",
            "Push subscriptions removed because their push service said they are gone",
            push_subscriptions_removed.clone(),
        );
        let push_queue_depth = Gauge::default();
        registry.register(
            "push_queue_depth",
            "Web Pushes waiting to be sent",
            push_queue_depth.clone(),
        );
        Arc::new(Self {
            registry,
            pushes_sent,
            pushes_failed,
            push_subscriptions_removed,
            push_queue_depth,
            responses,
            refusals,
            streams_open,
            events_published,
            events_seen: AtomicU64::new(0),
            write_seconds,
            store_errors,
        })
    }

    /// Counts one response. A method outside the fixed set is counted as `OTHER`, whoever
    /// built the labels.
    pub fn count_response(&self, labels: &ResponseLabels) {
        let method = method_label(&labels.method);
        if method == labels.method {
            self.responses.get_or_create(labels).inc();
        } else {
            let labels = ResponseLabels {
                method: method.to_owned(),
                ..labels.clone()
            };
            self.responses.get_or_create(&labels).inc();
        }
    }

    /// Counts one error response by its status and code (the server's own codes: a fixed set).
    pub fn count_refusal(&self, status: u16, code: &str) {
        self.refusals
            .get_or_create(&RefusalLabels {
                status,
                code: code.to_owned(),
            })
            .inc();
    }

    /// Records how long a durable write took.
    pub fn observe_write(&self, took: Duration) {
        self.write_seconds.observe(took.as_secs_f64());
    }

    /// Counts a push a push service accepted.
    pub fn push_sent(&self) {
        self.pushes_sent.inc();
    }

    /// Counts a push given up on.
    pub fn push_failed(&self) {
        self.pushes_failed.inc();
    }

    /// Counts a subscription removed because its push service said it is gone.
    pub fn push_subscription_removed(&self) {
        self.push_subscriptions_removed.inc();
    }

    /// Records how many pushes wait to be sent.
    pub fn set_push_queue_depth(&self, depth: usize) {
        self.push_queue_depth.set(depth as i64);
    }

    /// Counts a failed store operation.
    pub fn store_error(&self) {
        self.store_errors.inc();
    }

    /// The text exposition, with the hub's figures read now.
    pub fn render(&self, hub: &Hub) -> String {
        self.streams_open.set(hub.subscriber_count() as i64);
        let published = hub.published_total();
        let before = self.events_seen.swap(published, Ordering::AcqRel);
        self.events_published
            .inc_by(published.saturating_sub(before));
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// The labels of a counted error response.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusalLabels {
    /// The status code.
    pub status: u16,
    /// The error code of the JSON body (`rate_limited`, `cross_origin_write`, …).
    pub code: String,
}

/// The methods the server knows; any other is answered 501 and counted as `OTHER`.
pub const KNOWN_METHODS: [Method; 9] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::OPTIONS,
    Method::PATCH,
    Method::CONNECT,
    Method::TRACE,
];

/// The method as a label: itself when standard, else `OTHER`.
pub fn method_label(method: &str) -> &str {
    KNOWN_METHODS
        .iter()
        .find(|known| known.as_str() == method)
        .map_or("OTHER", Method::as_str)
}

/// Middleware around the whole app that counts every response by method, route pattern and
/// status (and every error response by its code), and logs it.
///
/// A method outside [`KNOWN_METHODS`] is answered 501 here, before anything else sees it: any
/// token is a valid method to HTTP, and none of them should reach a label or a handler. A
/// refusal that an inner middleware returns as an error (the rate limits, the origin check,
/// CORS) is made a response here, so that it is counted and logged like any other; then
/// [`json_client_error`] gives a plain-text 4xx the JSON error body.
///
/// Both happen when the response head is ready, not when its body ends: an event stream is
/// logged as it opens, and nothing wraps its body for its whole life (a per-request span held
/// by the body would cost every one of thousands of idle streams memory and every event a
/// span entry).
pub async fn observe_responses(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let started = std::time::Instant::now();
    let metrics = req.app_data::<web::Data<Arc<Metrics>>>().cloned();
    let method = method_label(req.method().as_str()).to_owned();
    // Taken before the call: an error comes back without its request (which must not be
    // cloned either, since routing needs it unshared).
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let path = req.path().to_owned();
    let outcome = if method == "OTHER" {
        let refused = ApiError::client(
            StatusCode::NOT_IMPLEMENTED,
            "method_not_implemented",
            "the server does not know that method",
        );
        Ok(req.into_response(refused.error_response()))
    } else {
        match next.call(req).await {
            Ok(response) => Ok(response.map_into_boxed_body()),
            Err(error) => Err(error),
        }
    };
    let (status, code, outcome) = match outcome {
        Ok(response) => {
            let response = json_client_error(response);
            let code = error_code(response.response());
            (response.status(), code, Ok(response))
        }
        // Only CORS refuses with an error: it becomes a response outside this middleware, so
        // the JSON body and the headers of every response are given to it here.
        Err(error) => {
            let response = json_error_response(error.error_response(), Some(&error), None);
            let code = error_code(&response);
            let refusal = actix_web::error::InternalError::from_response(error, response);
            (refusal.status_code(), code, Err(refusal.into()))
        }
    };
    let labels = ResponseLabels {
        method,
        route,
        status: status.as_u16(),
    };
    log_response_with(&labels, &path, started, code.as_deref());
    if let Some(metrics) = metrics {
        metrics.count_response(&labels);
        if let Some(code) = &code {
            metrics.count_refusal(labels.status, code);
        }
    }
    outcome
}

fn error_code(response: &HttpResponse) -> Option<String> {
    response
        .extensions()
        .get::<ErrorCode>()
        .map(|c| c.0.clone())
}

/// The request log line, the same for every path that serves a request.
pub fn log_response(labels: &ResponseLabels, path: &str, started: std::time::Instant) {
    log_response_with(labels, path, started, None);
}

/// The request log line, with the error code of a refusal.
pub fn log_response_with(
    labels: &ResponseLabels,
    path: &str,
    started: std::time::Instant,
    code: Option<&str>,
) {
    let micros = started.elapsed().as_micros() as u64;
    match code {
        Some(code) => tracing::info!(
            target: "nudge::http",
            method = %labels.method,
            path,
            status = labels.status,
            code,
            micros,
            "request refused"
        ),
        None => tracing::info!(
            target: "nudge::http",
            method = %labels.method,
            path,
            status = labels.status,
            micros,
            "request"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_outside_the_standard_set_share_one_label() {
        assert_eq!(method_label("GET"), "GET");
        assert_eq!(method_label("PATCH"), "PATCH");
        assert_eq!(method_label("get"), "OTHER", "methods are case-sensitive");
        assert_eq!(method_label(&"X".repeat(8192)), "OTHER");
    }

    #[test]
    fn a_counted_unknown_method_becomes_other() {
        let metrics = Metrics::new();
        for n in 0..100 {
            metrics.count_response(&ResponseLabels {
                method: format!("M{n}"),
                route: "unmatched".to_owned(),
                status: 501,
            });
        }
        let mut text = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut text, &metrics.registry);
        let series: Vec<_> = text
            .lines()
            .filter(|l| l.starts_with("nudge_http_responses_total{"))
            .collect();
        assert_eq!(
            series,
            [r#"nudge_http_responses_total{method="OTHER",route="unmatched",status="501"} 100"#]
        );
    }
}
