//! Metrics in the Prometheus text format at `GET /metrics`: open event streams, events
//! published, write latency, store errors, and responses by route and status (so 200s and 304s
//! of the cacheable reads can be told apart).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::hub::Hub;

/// The labels of a counted response.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResponseLabels {
    /// The HTTP method.
    pub method: String,
    /// The matched route pattern (`/api/rooms/{room}/recent`), never the raw path, so that the
    /// number of series stays bounded.
    pub route: String,
    /// The status code.
    pub status: u16,
}

/// Every metric of one server, cheap to share.
pub struct Metrics {
    registry: Registry,
    responses: Family<ResponseLabels, Counter>,
    streams_open: Gauge,
    events_published: Counter,
    /// Events published as the hub last reported them, to turn its total into increments.
    events_seen: AtomicU64,
    write_seconds: Histogram,
    store_errors: Counter,
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
        Arc::new(Self {
            registry,
            responses,
            streams_open,
            events_published,
            events_seen: AtomicU64::new(0),
            write_seconds,
            store_errors,
        })
    }

    /// Counts one response.
    pub fn count_response(&self, labels: &ResponseLabels) {
        self.responses.get_or_create(labels).inc();
    }

    /// Records how long a durable write took.
    pub fn observe_write(&self, took: Duration) {
        self.write_seconds.observe(took.as_secs_f64());
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

/// Middleware that counts every response by method, route pattern and status, and logs it.
///
/// Both happen when the response head is ready, not when its body ends: an event stream is
/// logged as it opens, and nothing wraps its body for its whole life (a per-request span held
/// by the body would cost every one of thousands of idle streams memory and every event a
/// span entry).
pub async fn observe_responses(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = std::time::Instant::now();
    let metrics = req.app_data::<web::Data<Arc<Metrics>>>().cloned();
    let method = req.method().to_string();
    let response = next.call(req).await?;
    let status = response.status().as_u16();
    let route = response
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let labels = ResponseLabels {
        method,
        route,
        status,
    };
    log_response(&labels, response.request().path(), started);
    if let Some(metrics) = metrics {
        metrics.count_response(&labels);
    }
    Ok(response)
}

/// The request log line, the same for every path that serves a request.
pub fn log_response(labels: &ResponseLabels, path: &str, started: std::time::Instant) {
    tracing::info!(
        target: "nudge::http",
        method = %labels.method,
        path,
        status = labels.status,
        micros = started.elapsed().as_micros() as u64,
        "request"
    );
}
