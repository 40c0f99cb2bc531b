//! How the listeners are served: actix-server's workers accept, actix-http speaks HTTP, and
//! the app's actix-web `App` answers, as `HttpServer` would assemble them; except that a new
//! plain-HTTP connection first passes through [`stream_connection::claim`], which keeps the
//! connections that open an event stream (see that module for why).
//!
//! `HttpServer` cannot hand a connection to anything but its own dispatcher, so the same parts
//! are put together here. The one thing this needs that actix-web keeps to itself is building
//! an [`AppConfig`] (the scheme, host and local address the app reports); actix-web exposes its
//! constructor for its own test server as `__priv_test_new`, and this is pinned by Cargo.lock.

use std::net::{SocketAddr, TcpListener};
use std::rc::Rc;
use std::time::Duration;

use actix_http::{HttpServiceBuilder, Protocol, TlsAcceptorConfig};
use actix_server::{GracefulShutdownSignal, Server, ServerBuilder};
use actix_service::boxed::BoxServiceFactory;
use actix_service::{
    fn_factory, fn_service, map_config, IntoServiceFactory, Service, ServiceFactory,
    ServiceFactoryExt,
};
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{AppConfig, ServiceResponse};
use tokio::net::TcpStream;

use crate::connections::ConnectionLog;
use crate::stream_connection::{self, Claim, Replayed};
use crate::Nudge;

/// Seconds in-flight requests get to finish after a stop.
const SHUTDOWN_TIMEOUT_SECS: u64 = 10;

/// Builds the server over the plain listener and, when given, the TLS one, with the app that
/// `app` makes (once per worker thread; usually [`Nudge::app`] with the app's routes added);
/// it serves once awaited or polled by the runtime. Signals are left to the caller, which
/// must end the streams first ([`Nudge::end_streams`]) and then stop the server.
pub fn serve<F, I, S, B>(
    nudge: &Nudge,
    plain: TcpListener,
    tls: Option<(TcpListener, rustls::ServerConfig)>,
    app: F,
) -> std::io::Result<Server>
where
    F: Fn() -> I + Send + Clone + 'static,
    I: IntoServiceFactory<S, actix_http::Request>,
    S: ServiceFactory<
            actix_http::Request,
            Config = AppConfig,
            Response = ServiceResponse<B>,
            Error = actix_web::Error,
            InitError = (),
        > + 'static,
    S::Service: 'static,
    B: MessageBody + 'static,
{
    let builder = ServerBuilder::new()
        .disable_signals()
        .shutdown_timeout(SHUTDOWN_TIMEOUT_SECS);
    let builder = listen_plain(builder, nudge.clone(), plain, app.clone())?;
    let builder = match tls {
        Some((listener, config)) => listen_tls(builder, nudge.clone(), listener, config, app)?,
        None => builder,
    };
    Ok(builder.run())
}

/// The app as actix-http's service factory, for connections to `addr` (boxed: the app's
/// types are the app's, and actix-http needs futures it can keep).
fn app_service<I, S, B>(
    app: I,
    secure: bool,
    addr: SocketAddr,
) -> BoxServiceFactory<(), actix_http::Request, ServiceResponse<B>, actix_web::HttpResponse, ()>
where
    I: IntoServiceFactory<S, actix_http::Request>,
    S: ServiceFactory<
            actix_http::Request,
            Config = AppConfig,
            Response = ServiceResponse<B>,
            Error = actix_web::Error,
            InitError = (),
        > + 'static,
    S::Service: 'static,
    B: MessageBody + 'static,
{
    let factory = app
        .into_factory()
        .map_err(|error: actix_web::Error| error.error_response());
    actix_service::boxed::factory(map_config(factory, move |()| {
        AppConfig::__priv_test_new(secure, addr.to_string(), addr)
    }))
}

/// What both listeners' HTTP services share: `HttpServer`'s timeouts, the graceful-shutdown
/// signal, connection numbering for the connection log, and EOF taken as the client gone.
fn http_settings<T, S>(
    addr: SocketAddr,
    shutdown: GracefulShutdownSignal,
    log: ConnectionLog,
    on_connect: impl Fn(&T, &mut actix_http::Extensions) + 'static,
) -> HttpServiceBuilder<T, S>
where
    S: ServiceFactory<actix_http::Request, Config = ()>,
    S::Error: Into<actix_http::Response<BoxBody>> + 'static,
    S::InitError: std::fmt::Debug,
    <S::Service as Service<actix_http::Request>>::Future: 'static,
{
    HttpServiceBuilder::default()
        .client_request_timeout(Duration::from_secs(5))
        .client_disconnect_timeout(Duration::from_secs(1))
        // An event-stream client never half-closes; treating EOF as gone is what lets a closed
        // stream be forgotten at once instead of at the next heartbeat write.
        .h1_allow_half_closed(false)
        .local_addr(addr)
        .graceful_shutdown_signal(move || {
            let shutdown = shutdown.clone();
            async move { shutdown.notified().await }
        })
        .on_connect_ext(move |io: &T, extensions| {
            log.on_connect(extensions);
            on_connect(io, extensions);
        })
}

/// Plain HTTP/1.1: each connection is claimed by an event stream or handed to actix-web.
fn listen_plain<F, I, S, B>(
    builder: ServerBuilder,
    state: Nudge,
    listener: TcpListener,
    app: F,
) -> std::io::Result<ServerBuilder>
where
    F: Fn() -> I + Send + Clone + 'static,
    I: IntoServiceFactory<S, actix_http::Request>,
    S: ServiceFactory<
            actix_http::Request,
            Config = AppConfig,
            Response = ServiceResponse<B>,
            Error = actix_web::Error,
            InitError = (),
        > + 'static,
    S::Service: 'static,
    B: MessageBody + 'static,
{
    let addr = listener.local_addr()?;
    let shutdown = builder.graceful_shutdown_signal();
    builder.listen("nudge-http", listener, move || {
        let state = Rc::new(state.clone());
        let log = state.connections().clone();
        // A stream served by actix-web ends its connection with this switch (see `Replayed`).
        let kill_switch = |io: &Replayed, extensions: &mut actix_http::Extensions| {
            extensions.insert(io.kill_switch());
        };
        let http = http_settings::<Replayed, _>(addr, shutdown.clone(), log, kill_switch)
            .finish(app_service(app(), false, addr));
        fn_factory(move || {
            let state = state.clone();
            let http = http.new_service(());
            async move {
                let http = Rc::new(http.await?);
                Ok::<_, ()>(fn_service(move |io: TcpStream| {
                    let (state, http) = (state.clone(), http.clone());
                    async move { serve_plain(io, &state, &*http).await }
                }))
            }
        })
    })
}

/// One plain connection: an event stream served to its end, or actix-web.
async fn serve_plain<H>(io: TcpStream, state: &Nudge, http: &H) -> Result<(), H::Error>
where
    H: Service<(Replayed, Protocol, Option<SocketAddr>), Response = ()>,
{
    let send_buffer = state.settings().send_buffer_bytes;
    if send_buffer > 0 {
        let _ = socket2::SockRef::from(&io).set_send_buffer_size(send_buffer);
    }
    let peer = io.peer_addr().ok();
    // Both arms boxed: the connection's future stays the size of the path it took.
    match Box::pin(stream_connection::claim(io, state)).await {
        Claim::Stream(stream) => {
            Box::pin(stream.serve(state)).await;
            Ok(())
        }
        Claim::Dispatch(replayed) => Box::pin(http.call((replayed, Protocol::Http1, peer))).await,
        Claim::Gone => Ok(()),
    }
}

/// HTTPS with HTTP/2 (and HTTP/1.1) over rustls, all through actix-web.
fn listen_tls<F, I, S, B>(
    builder: ServerBuilder,
    state: Nudge,
    listener: TcpListener,
    config: rustls::ServerConfig,
    app: F,
) -> std::io::Result<ServerBuilder>
where
    F: Fn() -> I + Send + Clone + 'static,
    I: IntoServiceFactory<S, actix_http::Request>,
    S: ServiceFactory<
            actix_http::Request,
            Config = AppConfig,
            Response = ServiceResponse<B>,
            Error = actix_web::Error,
            InitError = (),
        > + 'static,
    S::Service: 'static,
    B: MessageBody + 'static,
{
    let addr = listener.local_addr()?;
    let shutdown = builder.graceful_shutdown_signal();
    builder.listen("nudge-https", listener, move || {
        let log = state.connections().clone();
        http_settings(addr, shutdown.clone(), log, |_, _| {})
            .finish(app_service(app(), true, addr))
            .rustls_0_23_with_config(config.clone(), TlsAcceptorConfig::default())
    })
}
