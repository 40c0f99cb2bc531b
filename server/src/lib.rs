//! Watercooler: a chat built on [nudge]: rooms, messages, accounts, private rooms and
//! presence, live online through nudge's light event stream and readable offline through its
//! ServiceWorker. It uses nudge's public API only: it opens nudge with its tables
//! ([`store::MIGRATIONS`]) and its audience ([`access::RoomAudience`]), writes in nudge's
//! transactions, and serves its routes in nudge's app.
//!
//! Module map:
//! - [`config`]: typed settings from flags and the environment (clap).
//! - [`startup`]: binds the listeners first, then builds and runs the server.
//! - [`routes`]: one file per endpoint group, each with a `configure` function.
//! - [`error`]: nudge's errors as HTTP, with the refusals of accounts.
//! - [`domain`]: validated names and message bodies; the rules of the wire contract.
//! - [`store`]: rooms and messages on either backend, and users, sessions and private rooms
//!   behind a second trait, `Accounts`.
//! - [`auth`]: who is asking (the session cookie), passwords, and who may use which room.
//! - [`access`]: the in-memory view of private rooms and members, and the audience that
//!   answers nudge from it.
//! - [`limits`]: write and room rate limits (nudge keeps the caps on streams).
//! - [`presence`]: ephemeral, in-memory presence with a time to live.

pub mod access;
pub mod auth;
pub mod config;
pub mod domain;
pub mod error;
pub mod limits;
pub mod presence;
pub mod routes;
pub mod startup;
pub mod store;

pub use config::Config;
pub use nudge::{http_cache, hub, topic};
pub use startup::Application;
