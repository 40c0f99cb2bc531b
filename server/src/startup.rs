//! Bind first, then build: [`Application::build`] opens the store and binds the listener (port 0
//! in tests), [`Application::port`] tells where, and [`Application::run_until_stopped`] serves
//! until SIGTERM or Ctrl-C, then shuts down in order: stop accepting, end the streams, finish
//! in-flight requests, close the store.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};
use anyhow::Context;

use crate::connections::{self, ConnectionLog};
use crate::hub::Hub;
use crate::limits::{self, Limits};
use crate::metrics::{self as metrics_mw, Metrics};
use crate::presence::Presence;
use crate::routes::{self, AppState};
use crate::security::{self, AllowedOrigins};
use crate::store::metered::MeteredStore;
use crate::store::{self, Retention};
use crate::tls;
use crate::Config;

/// How often retention runs.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// A bound, ready-to-run server.
pub struct Application {
    server: Server,
    local_addr: SocketAddr,
    tls_addr: Option<SocketAddr>,
    state: AppState,
}

impl Application {
    /// Opens the store, binds the listener and builds the server, without serving yet.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let hub = Hub::new(config.subscriber_buffer);
        let metrics = Metrics::new();
        let (store, accounts) = store::open_with_accounts(&config, hub.clone()).await?;
        let store = Arc::new(MeteredStore::new(store, metrics.clone()));
        let state = AppState {
            store,
            accounts,
            metrics,
            hub,
            presence: Presence::new(Duration::from_secs(config.presence_ttl_secs)),
            connections: ConnectionLog::new(config.connection_log),
            limits: Limits::new(
                config.write_rate_per_address,
                config.write_burst,
                config.max_streams_per_address,
                config.trust_forwarded_for,
            )
            .with_session_rate(config.write_rate_per_session, config.session_write_burst),
            config: Arc::new(config),
        };

        let listener = TcpListener::bind(state.config.bind)
            .with_context(|| format!("binding {}", state.config.bind))?;
        let local_addr = listener.local_addr()?;
        let tls = match state.config.tls_bind {
            Some(addr) => {
                let (cert, key) = tls::certificate_files(&state.config)?;
                let tls_config = tls::server_config(&cert, &key)?;
                let listener =
                    TcpListener::bind(addr).with_context(|| format!("binding {addr} for TLS"))?;
                Some((listener, tls_config))
            }
            None => None,
        };
        let tls_addr = match &tls {
            Some((listener, _)) => Some(listener.local_addr()?),
            None => None,
        };
        let app_state = state.clone();
        let send_buffer = state.config.send_buffer_bytes;
        let connection_log = state.connections.clone();
        let server = HttpServer::new(move || {
            let config = app_state.config.clone();
            let origins = AllowedOrigins(config.cors_origins.clone());
            // The last `wrap` runs first: log, count, then CORS, origin check, rate limit.
            App::new()
                .wrap(actix_web::middleware::from_fn(limits::limit_writes))
                .wrap(actix_web::middleware::from_fn(security::same_origin_writes))
                .wrap(actix_web::middleware::Condition::new(
                    !origins.0.is_empty(),
                    security::cors(&origins),
                ))
                .wrap(security::default_headers())
                .wrap(actix_web::middleware::from_fn(
                    metrics_mw::observe_responses,
                ))
                .wrap(actix_web::middleware::from_fn(connections::record_requests))
                .app_data(web::Data::new(app_state.clone()))
                .app_data(web::Data::new(app_state.metrics.clone()))
                .app_data(web::Data::new(app_state.connections.clone()))
                .app_data(web::Data::new(app_state.limits.clone()))
                .app_data(web::Data::new(origins))
                .configure(|cfg| routes::configure(cfg, &config))
        })
        .on_connect(move |connection, extensions| {
            connection_log.on_connect(extensions);
            if send_buffer > 0 {
                if let Some(tcp) = connection.downcast_ref::<actix_web::rt::net::TcpStream>() {
                    let _ = socket2::SockRef::from(tcp).set_send_buffer_size(send_buffer);
                }
            }
        })
        // An event-stream client never half-closes; treating EOF as gone is what lets a closed
        // stream be forgotten at once instead of at the next heartbeat write.
        .h1_allow_half_closed(false)
        .listen(listener)?;
        let server = match tls {
            Some((listener, tls_config)) => server.listen_rustls_0_23(listener, tls_config)?,
            None => server,
        }
        // Signals are handled in `run_until_stopped`, which must end the streams first.
        .disable_signals()
        .shutdown_timeout(10)
        .run();
        Ok(Self {
            server,
            local_addr,
            tls_addr,
            state,
        })
    }

    /// The port the listener is bound to.
    pub fn port(&self) -> u16 {
        self.local_addr.port()
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The HTTPS address, when TLS is on.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_addr
    }

    /// The hub, for tests that count subscribers.
    pub fn hub(&self) -> Hub {
        self.state.hub.clone()
    }

    /// The store, for tests that drive retention.
    pub fn store(&self) -> Arc<dyn crate::store::Store> {
        self.state.store.clone()
    }

    /// Serves until SIGTERM or Ctrl-C, then shuts down gracefully.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let Self { server, state, .. } = self;
        let handle = server.handle();
        let pruner = tokio::spawn(prune_periodically(state.clone()));
        let shutdown = {
            let hub = state.hub.clone();
            async move {
                wait_for_signal().await;
                tracing::info!("shutting down: ending streams and finishing requests");
                hub.shutdown();
                handle.stop(true).await;
            }
        };
        let (served, ()) = tokio::join!(server, shutdown);
        pruner.abort();
        state.store.close().await;
        served.context("serving")
    }
}

async fn prune_periodically(state: AppState) {
    let retention = Retention {
        max_events: state.config.retain_events,
        max_age_secs: state.config.retain_secs,
    };
    let mut tick = tokio::time::interval(PRUNE_EVERY);
    loop {
        tick.tick().await;
        state.limits.forget_idle();
        match state.store.prune(retention).await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "pruned the event log"),
            Err(error) => tracing::warn!(%error, "pruning the event log failed"),
        }
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
