//! API tests: each starts a real server on port 0 over a fresh SQLite file and talks HTTP to it.

/// Runs a test function `name(path: StreamPath)` over both of the server's stream paths (see
/// `helpers::StreamPath`): a test module `name` with one test per path. Defined before the
/// modules, so every test file may use it.
macro_rules! over_both_paths {
    ($(#[$attr:meta] $name:ident;)*) => {$(
        mod $name {
            use super::StreamPath;

            #[$attr]
            async fn dedicated_connection() {
                super::$name(StreamPath::Dedicated).await
            }

            #[$attr]
            async fn shared_connection() {
                super::$name(StreamPath::Shared).await
            }
        }
    )*};
}

#[path = "../common/accounts.rs"]
mod accounts_common;
mod helpers;
mod http1;
#[path = "../common/process.rs"]
mod process_common;
mod sse_client;
#[path = "../common/wait.rs"]
mod wait;

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
