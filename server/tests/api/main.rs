//! API tests: each starts a real server on port 0 over a fresh SQLite file and talks HTTP to it.

mod helpers;
#[path = "../common/process.rs"]
mod process_common;
mod sse_client;

mod auth;
mod bad_input;
mod durability;
mod events;
mod idempotency;
mod messages;
mod metrics;
mod presence;
mod private_rooms;
mod process;
mod resume;
mod security;
mod stream_connection;
