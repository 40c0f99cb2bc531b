//! nudge's server: writes arrive as ordinary POSTs, become durable in an event log, and every
//! subscriber gets a *light* Server-Sent Event naming the URL that changed.
//!
//! Module map:
//! - [`config`]: typed settings from flags and the environment (clap).
//! - [`startup`]: binds the listeners first, then builds and runs the server.
//! - [`listeners`]: actix-server, actix-http and the actix-web app put together, with a new
//!   plain connection first offered to [`stream_connection`].
//! - [`stream_connection`]: connections dedicated to one event stream, served outside
//!   actix-web's HTTP/1 dispatcher to keep an idle subscriber small.
//! - [`tls`]: rustls configuration and the self-signed development certificate.
//! - [`connections`]: the optional per-connection request log (HTTP version, requests).
//! - [`routes`]: one file per endpoint group, each with a `configure` function.
//! - [`error`]: the one mapping from errors to HTTP status and JSON body.
//! - [`domain`]: validated names and message bodies; the rules of the wire contract.
//! - [`store`]: the storage and fan-out engine behind a trait, with SQLite as the default; users,
//!   sessions and private rooms behind a second trait, `Accounts`.
//! - [`auth`]: who is asking (the session cookie), passwords, and who may use which room.
//! - [`access`]: the in-memory view of private rooms and members that reads and delivery ask.
//! - [`hub`]: in-process fan-out of committed events to subscribers, with bounded buffers,
//!   delivering private rooms' events to their members only.
//! - [`topic`]: topic selectors (`rooms/general`, `rooms/*`) and their matching.
//! - [`sse`]: the event-stream encoding and the per-subscriber stream.
//! - [`security`]: security headers, same-origin writes (CSRF) and the CORS allow-list.
//! - [`limits`]: write rate limits, the cap on streams per address and the rate of opening them.
//! - [`presence`]: ephemeral, in-memory presence with a time to live.
//! - [`http_cache`]: strong ETags and `If-None-Match` for cacheable reads.
//! - [`metrics`]: Prometheus metrics and the middleware that counts responses.

pub mod access;
pub mod auth;
pub mod config;
pub mod connections;
pub mod domain;
pub mod error;
pub mod http_cache;
pub mod hub;
pub mod limits;
pub mod listeners;
pub mod metrics;
pub mod presence;
pub mod routes;
pub mod security;
pub mod sse;
pub mod startup;
pub mod store;
pub mod stream_connection;
pub mod tls;
pub mod topic;

pub use config::Config;
pub use startup::Application;
