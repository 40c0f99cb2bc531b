//! nudge: keep a web app live while online and working offline, without WebSockets.
//!
//! Writes arrive as ordinary requests to the app's own handlers and become durable in the
//! app's own tables together with an entry of nudge's event log, in one transaction. Once it
//! commits, every open stream on the topic gets a *light* Server-Sent Event naming the URL
//! that changed, in commit order; the browser fetches it again (through a ServiceWorker that
//! keeps it for offline use). nudge knows topics, URLs, the log, the streams and idempotency;
//! what they mean is the app's.
//!
//! ```no_run
//! use actix_web::{web, HttpResponse};
//! use nudge::{Nudge, StoreError};
//!
//! # async fn run() -> anyhow::Result<()> {
//! // Open the embedded default (or `.postgres(url)`), with the app's own tables beside the log.
//! let nudge = Nudge::builder()
//!     .sqlite("data")
//!     .migrations(nudge::Migrations {
//!         component: "todos",
//!         sqlite: &["CREATE TABLE todos (id INTEGER PRIMARY KEY, text TEXT NOT NULL)"],
//!         postgres: &["CREATE TABLE todos (id bigserial PRIMARY KEY, text text NOT NULL)"],
//!     })
//!     .build()
//!     .await?;
//!
//! // A write: the app's row and the log entry commit together; the nudge goes out after.
//! let sqlite = nudge.sqlite().expect("opened on SQLite");
//! sqlite
//!     .write(|tx| {
//!         tx.conn().execute("INSERT INTO todos (text) VALUES ('milk')", [])?;
//!         tx.changed("todos", "/api/todos")?;
//!         Ok::<_, StoreError>(())
//!     })
//!     .await?;
//!
//! // Serve the app's routes, with the event stream at /api/events.
//! let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
//! let app = nudge.clone();
//! let server = nudge::serve(&nudge, listener, None, move || {
//!     app.app().route("/api/todos", web::get().to(HttpResponse::Ok))
//! })?;
//! # drop(server);
//! # Ok(())
//! # }
//! ```
//!
//! Module map:
//! - [`Nudge`], [`Builder`], [`Settings`] (this file): open a store, hold the parts, mount them.
//! - [`store`]: the event log on [`store::sqlite`] or [`store::postgres`], with the app's writes
//!   in the same transaction.
//! - [`audience`]: who may read what ([`Audience`], the app's), and who is asking.
//! - [`hub`]: in-process fan-out of committed events to the streams of this node.
//! - [`stream`]: the event-stream endpoint (resume, coalescing, `reset`, heartbeat, `retry:`).
//! - [`stream_connection`]: connections dedicated to one stream, to keep an idle one small.
//! - [`serve`](mod@serve): the listeners, with new plain connections first offered to
//!   [`stream_connection`].
//! - [`idempotency`]: the first answer to an `Idempotency-Key`, stored with the write.
//! - [`sse`]: the event-stream encoding and the per-stream body.
//! - [`topic`]: topic selectors (`todos`, `lists/*`) and their matching.
//! - [`limits`]: per-address caps on streams, and token buckets for an app's own limits.
//! - [`security`]: security headers, same-origin writes (CSRF) and the CORS allow-list.
//! - [`http_cache`]: strong ETags and `If-None-Match` for cacheable reads.
//! - [`metrics`], [`health`]: Prometheus metrics, `/healthz`, `/readyz`, `/metrics`.
//! - [`error`]: the one mapping from errors to a status and a JSON body.
//! - [`tls`], [`connections`]: rustls settings and the optional per-connection request log.

pub mod audience;
pub mod connections;
pub mod error;
pub mod health;
pub mod http_cache;
pub mod hub;
pub mod idempotency;
pub mod limits;
pub mod metrics;
pub mod push;
pub mod security;
pub mod serve;
pub mod sse;
pub mod store;
pub mod stream;
pub mod stream_connection;
pub mod tls;
pub mod topic;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::{web, App};

pub use audience::{
    Audience, Credentials, Everyone, Readers, Revocation, SessionKey, StreamSession, Viewer,
};
pub use error::ApiError;
pub use hub::{Hub, HubEvent};
pub use serve::serve;
pub use store::{EventLog, LoggedEvent, Migrations, Retention, StoreError, StoreResult};
pub use topic::TopicSet;

use connections::ConnectionLog;
use limits::Limits;
use metrics::Metrics;
use security::AllowedOrigins;
use store::postgres::PostgresStore;
use store::sqlite::SqliteStore;

/// How nudge runs; every field has a default suited to one machine.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where the event stream is mounted (both paths: actix-web's route and the dedicated
    /// connection). Default `/api/events`.
    pub stream_path: String,
    /// How often an idle stream gets a comment line, so proxies and the browser keep it.
    pub heartbeat: Duration,
    /// Events buffered per stream; a stream that falls further behind gets `reset` and ends.
    pub subscriber_buffer: usize,
    /// Kernel send buffer per plain connection (0: the system's default).
    pub send_buffer_bytes: usize,
    /// Longest a write to a client may take before the stream is ended.
    pub write_timeout: Duration,
    /// Open streams per address (0: no cap).
    pub max_streams_per_address: usize,
    /// Stream opens per second per address (0: no limit), with bursts of
    /// `stream_open_burst`.
    pub stream_open_rate_per_address: u32,
    /// See `stream_open_rate_per_address`.
    pub stream_open_burst: u32,
    /// Most events a resuming stream replays; more gets `reset` (0: no cap).
    pub max_replay_events: usize,
    /// The client is the last `X-Forwarded-For` hop, and `X-Forwarded-Host`/`-Proto` name the
    /// site's own origin (only behind a proxy that sets them).
    pub trust_forwarded_for: bool,
    /// The site's own origins for the same-origin check of writes (empty: the request's own).
    pub public_origin: Vec<String>,
    /// Other origins allowed to call the API (CORS; empty: none).
    pub cors_origins: Vec<String>,
    /// How long the log keeps events.
    pub retention: Retention,
    /// Requests remembered per connection for `/debug/connections` (0: off).
    pub connection_log: usize,
    /// Web Push (`None`: off).
    pub push: Option<push::PushSettings>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            stream_path: "/api/events".to_owned(),
            heartbeat: Duration::from_secs(15),
            subscriber_buffer: 256,
            send_buffer_bytes: 0,
            write_timeout: Duration::from_secs(30),
            max_streams_per_address: 64,
            stream_open_rate_per_address: 2,
            stream_open_burst: 20,
            max_replay_events: 1000,
            trust_forwarded_for: false,
            public_origin: Vec::new(),
            cors_origins: Vec::new(),
            retention: Retention {
                max_events: 100_000,
                max_age_secs: 7 * 24 * 3600,
            },
            connection_log: 0,
            push: None,
        }
    }
}

enum Backend {
    Sqlite(PathBuf),
    Postgres(String),
}

/// Opens nudge: [`Nudge::builder`].
pub struct Builder {
    backend: Backend,
    settings: Settings,
    audience: Arc<dyn Audience>,
    migrations: Vec<Migrations>,
}

impl Builder {
    /// The embedded default: `nudge.sqlite3` in `data_dir` (created if needed).
    pub fn sqlite(mut self, data_dir: impl Into<PathBuf>) -> Self {
        self.backend = Backend::Sqlite(data_dir.into());
        self
    }

    /// PostgreSQL at `url` (`postgres://…`), for many nodes on one database.
    pub fn postgres(mut self, url: impl Into<String>) -> Self {
        self.backend = Backend::Postgres(url.into());
        self
    }

    /// Every setting at once.
    pub fn settings(mut self, settings: Settings) -> Self {
        self.settings = settings;
        self
    }

    /// How long the log keeps events: at most `max_events`, none older than `max_age`.
    pub fn retention(mut self, max_events: u64, max_age: Duration) -> Self {
        self.settings.retention = Retention {
            max_events,
            max_age_secs: max_age.as_secs(),
        };
        self
    }

    /// How often an idle stream gets a keep-alive comment.
    pub fn heartbeat(mut self, every: Duration) -> Self {
        self.settings.heartbeat = every;
        self
    }

    /// Who may read what (default: anyone, anything).
    pub fn audience(mut self, audience: Arc<dyn Audience>) -> Self {
        self.audience = audience;
        self
    }

    /// The app's own tables, migrated after nudge's, in the same database.
    pub fn migrations(mut self, migrations: Migrations) -> Self {
        self.migrations.push(migrations);
        self
    }

    /// Opens the store (migrating it), and on PostgreSQL starts following the log.
    pub async fn build(self) -> anyhow::Result<Nudge> {
        use anyhow::Context;
        let settings = self.settings;
        let hub = Hub::with_audience(settings.subscriber_buffer, self.audience);
        let (log, backend): (Arc<dyn EventLog>, OpenedBackend) = match self.backend {
            Backend::Postgres(url) => {
                if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                    anyhow::bail!(
                        "unsupported database URL scheme {:?}: use postgres://",
                        url.split("://").next().unwrap_or_default()
                    );
                }
                // The URL is never in the error: it may hold a password.
                let store = Arc::new(
                    PostgresStore::open(&url, hub.clone(), &self.migrations)
                        .await
                        .context("opening the PostgreSQL store")?,
                );
                (store.clone(), OpenedBackend::Postgres(store))
            }
            Backend::Sqlite(dir) => {
                let (hub, migrations) = (hub.clone(), self.migrations);
                let dir_shown = dir.display().to_string();
                let store =
                    tokio::task::spawn_blocking(move || SqliteStore::open(&dir, hub, &migrations))
                        .await?
                        .with_context(|| format!("opening the store in {dir_shown}"))?;
                let store = Arc::new(store);
                (store.clone(), OpenedBackend::Sqlite(store))
            }
        };
        let limits = Limits::new(
            settings.max_streams_per_address,
            settings.trust_forwarded_for,
        )
        .with_stream_open_rate(
            settings.stream_open_rate_per_address,
            settings.stream_open_burst,
        );
        let metrics = Metrics::new();
        let push = match settings.push.clone() {
            Some(push) => Some(
                push::start(push, hub.clone(), &backend, metrics.clone())
                    .context("starting Web Push")?,
            ),
            None => None,
        };
        Ok(Nudge {
            inner: Arc::new(Inner {
                hub,
                log,
                backend,
                push,
                metrics,
                limits,
                connections: ConnectionLog::new(settings.connection_log),
                origins: AllowedOrigins(settings.cors_origins.clone()),
                settings,
            }),
        })
    }
}

pub(crate) enum OpenedBackend {
    Sqlite(Arc<SqliteStore>),
    Postgres(Arc<PostgresStore>),
}

struct Inner {
    settings: Settings,
    hub: Hub,
    log: Arc<dyn EventLog>,
    backend: OpenedBackend,
    push: Option<push::subscriptions::PushState>,
    metrics: Arc<Metrics>,
    limits: Limits,
    connections: ConnectionLog,
    origins: AllowedOrigins,
}

/// The parts of a running nudge: the store and its log, the hub, the limits and metrics. A
/// cheap handle; clones share everything.
#[derive(Clone)]
pub struct Nudge {
    inner: Arc<Inner>,
}

impl Nudge {
    /// Starts opening nudge.
    pub fn builder() -> Builder {
        Builder {
            backend: Backend::Sqlite(PathBuf::from("data")),
            settings: Settings::default(),
            audience: Arc::new(Everyone),
            migrations: Vec::new(),
        }
    }

    /// The settings it runs with.
    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// The embedded store, when nudge was opened on SQLite: its writer runs the app's writes.
    pub fn sqlite(&self) -> Option<&Arc<SqliteStore>> {
        match &self.inner.backend {
            OpenedBackend::Sqlite(store) => Some(store),
            OpenedBackend::Postgres(_) => None,
        }
    }

    /// The PostgreSQL store, when nudge was opened on it.
    pub fn postgres(&self) -> Option<&Arc<PostgresStore>> {
        match &self.inner.backend {
            OpenedBackend::Postgres(store) => Some(store),
            OpenedBackend::Sqlite(_) => None,
        }
    }

    /// The event log, whichever the backend.
    pub fn log(&self) -> &Arc<dyn EventLog> {
        &self.inner.log
    }

    /// This node's fan-out to its streams.
    pub fn hub(&self) -> &Hub {
        &self.inner.hub
    }

    /// The metrics `/metrics` reports; an app may count its own writes in them.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    /// The stream caps, and the client's address as they key it.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// The per-connection request log.
    pub fn connections(&self) -> &ConnectionLog {
        &self.inner.connections
    }

    /// Logs "the resource at `url` changed" on `topic` on its own (a change whose data lives
    /// elsewhere); published once durable. A change to the app's own rows should be logged in
    /// their transaction instead ([`SqliteStore::write`], [`store::postgres::log_change`]).
    pub async fn changed(&self, topic: &str, url: &str) -> StoreResult<i64> {
        match &self.inner.backend {
            OpenedBackend::Sqlite(store) => {
                let (topic, url) = (topic.to_owned(), url.to_owned());
                store.write(move |tx| tx.changed(&topic, &url)).await
            }
            OpenedBackend::Postgres(store) => {
                let id = store.changed(topic, url).await?;
                store.published(id).await;
                Ok(id)
            }
        }
    }

    /// Tells this node's streams on `topic` that `url` changed, without logging it: for
    /// ephemeral data (presence) that a reconnecting stream need not replay and a cache must
    /// not keep. On many nodes, each node publishes its own.
    pub fn ephemeral(&self, topic: &str, url: &str) {
        self.inner.hub.publish(HubEvent::ephemeral(topic, url));
    }

    /// Ends `topic` on `principal`'s open streams on this node (see [`Hub::revoke`]).
    pub fn revoke(&self, principal: &str, topic: &str) {
        self.inner.hub.revoke(principal, topic);
    }

    /// Ends the streams opened with session `key` on this node.
    pub fn end_session(&self, key: &SessionKey) -> usize {
        self.inner.hub.end_session(key)
    }

    /// An actix-web `App` with nudge's middleware (security headers, same-origin writes, CORS,
    /// metrics and JSON errors for every 4xx, the connection log), its data, the event stream
    /// at [`Settings::stream_path`] and `/healthz`, `/readyz`, `/metrics`. The app adds its
    /// routes (and may wrap more middleware) and hands the factory to [`serve`](crate::serve()).
    pub fn app(
        &self,
    ) -> App<
        impl ServiceFactory<
            ServiceRequest,
            Config = (),
            Response = ServiceResponse<impl MessageBody>,
            Error = actix_web::Error,
            InitError = (),
        >,
    > {
        App::new()
            .wrap(actix_web::middleware::from_fn(security::same_origin_writes))
            .wrap(actix_web::middleware::Condition::new(
                !self.inner.origins.0.is_empty(),
                security::cors(&self.inner.origins),
            ))
            .wrap(actix_web::middleware::from_fn(metrics::observe_responses))
            .wrap(security::default_headers())
            .wrap(actix_web::middleware::from_fn(connections::record_requests))
            .configure(|cfg| self.mount(cfg))
    }

    /// Adds nudge's data, the event stream and the operations endpoints to an app that builds
    /// its own `App` (and runs `HttpServer` itself): the stream is then served on actix-web's
    /// route alone, without the dedicated connections that keep an idle stream small.
    pub fn mount(&self, cfg: &mut web::ServiceConfig) {
        cfg.app_data(web::Data::new(self.clone()))
            .app_data(web::Data::new(self.inner.metrics.clone()))
            .app_data(web::Data::new(self.inner.connections.clone()))
            .app_data(web::Data::new(self.inner.origins.clone()))
            .configure(|cfg| stream::configure(cfg, &self.inner.settings.stream_path))
            .configure(health::configure);
        if self.inner.push.is_some() {
            cfg.configure(push::subscriptions::configure);
        }
    }

    pub(crate) fn push_state(&self) -> Option<&push::subscriptions::PushState> {
        self.inner.push.as_ref()
    }

    /// The VAPID public key pages subscribe with, when Web Push is on.
    pub fn push_public_key(&self) -> Option<&str> {
        self.inner.push.as_ref().map(|p| p.keys.public_base64())
    }

    /// Applies retention now; returns how many events were removed.
    pub async fn prune(&self) -> StoreResult<u64> {
        self.inner.log.prune(self.inner.settings.retention).await
    }

    /// Applies retention on a timer (and forgets idle rate-limit buckets) until the task is
    /// aborted; the app spawns it.
    pub async fn prune_periodically(self, every: Duration) {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            self.inner.limits.forget_idle();
            match self.prune().await {
                Ok(0) => {}
                Ok(removed) => tracing::info!(removed, "pruned the event log"),
                Err(error) => tracing::warn!(%error, "pruning the event log failed"),
            }
        }
    }

    /// Graceful shutdown, first step: ends every stream (a blocked one at once).
    pub fn end_streams(&self) {
        self.inner.hub.shutdown();
    }

    /// Graceful shutdown, last step: finishes pending writes and releases the store.
    pub async fn close(&self) {
        self.inner.log.close().await;
    }
}
