//! API tests: each starts a real server on port 0 over a fresh SQLite file and talks HTTP to it.

mod helpers;
mod http1;
#[path = "../common/process.rs"]
mod process_common;
mod sse_client;

mod auth;
mod bad_input;
mod durability;
mod events;
mod idempotency;
mod identity;
mod login_limits;
mod messages;
mod metrics;
mod presence;
mod private_rooms;
mod process;
mod protocol;
mod resume;
mod room_list;
mod security;
mod session_streams;
mod slow_clients;
mod stream_connection;
