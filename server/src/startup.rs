//! Bind first, then build: [`Application::build`] opens the store and binds the listener (port 0
//! in tests), [`Application::port`] tells where, and [`Application::run_until_stopped`] serves
//! until SIGTERM or Ctrl-C, then shuts down in order: stop accepting, end the streams, finish
//! in-flight requests, close the store.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_server::Server;
use anyhow::Context;

use nudge::{tls, Hub};

use crate::auth::password::Hasher;
use crate::auth::throttle::LoginThrottle;
use crate::limits::Limits;
use crate::presence::Presence;
use crate::routes::{self, AppState};
use crate::store::metered::MeteredStore;
use crate::store::{self, Backend};
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
        let backend = match &config.database_url {
            Some(url) => Backend::Postgres(url.clone()),
            None => Backend::Sqlite(config.data_dir.clone()),
        };
        let opened = store::open(backend, config.nudge_settings()).await?;
        let nudge = opened.nudge.clone();
        let state = AppState {
            store: Arc::new(MeteredStore::new(opened.store, nudge.metrics().clone())),
            accounts: opened.accounts,
            access: opened.access,
            nudge,
            presence: Presence::new(Duration::from_secs(config.presence_ttl_secs)),
            limits: Limits::new(config.write_rate_per_address, config.write_burst)
                .with_session_rate(config.write_rate_per_session, config.session_write_burst)
                .with_room_rate(
                    config.rooms_per_hour_per_address,
                    config.rooms_per_hour_per_account,
                    config.room_burst,
                ),
            hasher: Hasher::new(
                config.hash_concurrency,
                Duration::from_millis(config.hash_wait_ms),
            )
            .context("starting the password hashing threads")?,
            login_throttle: LoginThrottle::new(
                config.login_rate_per_name,
                config.login_rate_per_address,
            ),
            known_rooms: Default::default(),
            config: Arc::new(config),
        };

        let listener = TcpListener::bind(state.config.bind)
            .with_context(|| format!("binding {}", state.config.bind))?;
        let local_addr = listener.local_addr()?;
        let tls = match state.config.tls_bind {
            Some(addr) => {
                let config = &state.config;
                let (cert, key) = tls::certificate_files(
                    config.tls_cert.as_deref(),
                    config.tls_key.as_deref(),
                    config.tls_self_signed.then_some(config.data_dir.as_path()),
                )?;
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
        let server = nudge::serve(&state.nudge, listener, tls, move || {
            let state = app_state.clone();
            state
                .nudge
                .app()
                .configure(|cfg| routes::configure(cfg, &state))
        })?;
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
        self.state.nudge.hub().clone()
    }

    /// nudge, for tests that look beneath the chat.
    pub fn nudge(&self) -> nudge::Nudge {
        self.state.nudge.clone()
    }

    /// The presence, for tests that watch it being swept.
    pub fn presence(&self) -> Presence {
        self.state.presence.clone()
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
        let presence_sweeper = tokio::spawn(sweep_presence(state.presence.clone()));
        let shutdown = {
            let nudge = state.nudge.clone();
            async move {
                wait_for_signal().await;
                tracing::info!("shutting down: ending streams and finishing requests");
                nudge.end_streams();
                handle.stop(true).await;
            }
        };
        let (served, ()) = tokio::join!(server, shutdown);
        pruner.abort();
        presence_sweeper.abort();
        state.store.close().await;
        served.context("serving")
    }
}

async fn prune_periodically(state: AppState) {
    let retention = state.nudge.settings().retention;
    let mut tick = tokio::time::interval(PRUNE_EVERY);
    loop {
        tick.tick().await;
        state.limits.forget_idle();
        state.nudge.limits().forget_idle();
        state.login_throttle.forget_idle();
        // The chat's store prunes the log and then its own old rows.
        match state.store.prune(retention).await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "pruned the event log"),
            Err(error) => tracing::warn!(%error, "pruning the event log failed"),
        }
    }
}

/// Forgets expired presence on a timer: a room nobody reads again would otherwise keep its
/// announcements for ever.
async fn sweep_presence(presence: Presence) {
    let mut tick = tokio::time::interval(presence.sweep_every());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        presence.sweep();
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
