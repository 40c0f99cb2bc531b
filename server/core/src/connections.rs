//! Which requests each connection carried, and over which HTTP version. Kept only when
//! `--connection-log` is above zero (for diagnosis and the HTTP/2 end-to-end test), for the
//! most recent connections, and served as JSON at `/debug/connections`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use actix_web::body::MessageBody;
use actix_web::dev::{Extensions, ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;
use serde::Serialize;

/// Requests remembered per connection.
const REQUESTS_PER_CONNECTION: usize = 64;

/// Set on every connection when it opens.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionId(pub u64);

/// What one connection carried.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectionRecord {
    /// The connection's number, in order of opening.
    pub id: u64,
    /// `HTTP/1.1` or `HTTP/2.0`.
    pub version: String,
    /// Method and path of each request, oldest first (at most 64).
    pub requests: Vec<String>,
}

/// The log; a cheap handle.
#[derive(Clone)]
pub struct ConnectionLog {
    next: Arc<AtomicU64>,
    capacity: usize,
    records: Arc<Mutex<BTreeMap<u64, ConnectionRecord>>>,
}

impl ConnectionLog {
    /// Remembers up to `capacity` connections (0 turns the log off).
    pub fn new(capacity: usize) -> Self {
        Self {
            next: Arc::new(AtomicU64::new(1)),
            capacity,
            records: Arc::default(),
        }
    }

    /// Whether the log is kept at all.
    pub fn enabled(&self) -> bool {
        self.capacity > 0
    }

    /// Numbers a new connection (called from `on_connect`).
    pub fn on_connect(&self, extensions: &mut Extensions) {
        extensions.insert(self.number());
    }

    /// The next connection's number.
    pub fn number(&self) -> ConnectionId {
        ConnectionId(self.next.fetch_add(1, Ordering::Relaxed))
    }

    /// Adds `request` (method and target) to connection `id`'s record.
    pub fn record(&self, id: u64, version: String, request: String) {
        if !self.enabled() {
            return;
        }
        let mut records = self.records.lock().unwrap_or_else(|p| p.into_inner());
        let record = records.entry(id).or_insert_with(|| ConnectionRecord {
            id,
            version,
            requests: Vec::new(),
        });
        if record.requests.len() < REQUESTS_PER_CONNECTION {
            record.requests.push(request);
        }
        while records.len() > self.capacity {
            records.pop_first();
        }
    }

    /// Every remembered connection that carried at least one request.
    pub fn snapshot(&self) -> Vec<ConnectionRecord> {
        let records = self.records.lock().unwrap_or_else(|p| p.into_inner());
        records.values().cloned().collect()
    }
}

/// Middleware that adds each request to its connection's record.
pub async fn record_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if let Some(log) = req.app_data::<web::Data<ConnectionLog>>() {
        if let (true, Some(id)) = (log.enabled(), req.conn_data::<ConnectionId>()) {
            let path = req
                .uri()
                .path_and_query()
                .map_or_else(|| req.path().to_owned(), |p| p.to_string());
            log.record(
                id.0,
                format!("{:?}", req.version()),
                format!("{} {path}", req.method()),
            );
        }
    }
    next.call(req).await
}
