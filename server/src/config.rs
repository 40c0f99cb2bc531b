//! Typed configuration. Precedence: flags, then environment variables, then defaults.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// Every setting of the server; `nudge --help` documents each one.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "nudge",
    version,
    about = "Light Server-Sent Events over a durable event log"
)]
pub struct Config {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "NUDGE_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,

    /// Directory for the embedded database.
    #[arg(long, env = "NUDGE_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,

    /// PostgreSQL URL (`postgres://…`) for many nodes; unset, the embedded SQLite store in the
    /// data directory is used. Never printed: it may hold a password.
    #[arg(long, env = "NUDGE_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Directory of the static web app (Watercooler) served at `/`.
    #[arg(long, env = "NUDGE_WWW_DIR", default_value = "www")]
    pub www_dir: PathBuf,

    /// Seconds between keep-alive comments on an event stream.
    #[arg(long, env = "NUDGE_HEARTBEAT_SECS", default_value_t = 15)]
    pub heartbeat_secs: u64,

    /// Events buffered per subscriber before it is sent `reset` and closed. Keep it at least
    /// as large as a commit batch (up to 1024 writes arrive at once under load); capacity
    /// costs no memory until it is used.
    #[arg(long, env = "NUDGE_SUBSCRIBER_BUFFER", default_value_t = 1024)]
    pub subscriber_buffer: usize,

    /// Kernel send buffer per connection, in bytes (0 keeps the kernel's autotuning, which may
    /// grow to megabytes for a subscriber that stops reading before its buffer overflows).
    #[arg(long, env = "NUDGE_SEND_BUFFER_BYTES", default_value_t = 0)]
    pub send_buffer_bytes: usize,

    /// Largest accepted request body, in bytes.
    #[arg(long, env = "NUDGE_MAX_BODY_BYTES", default_value_t = 16 * 1024)]
    pub max_body_bytes: usize,

    /// Events kept in the log for resuming streams (older ones are pruned).
    #[arg(long, env = "NUDGE_RETAIN_EVENTS", default_value_t = 100_000)]
    pub retain_events: u64,

    /// Seconds an event is kept in the log for resuming streams.
    #[arg(long, env = "NUDGE_RETAIN_SECS", default_value_t = 7 * 24 * 3600)]
    pub retain_secs: u64,

    /// Seconds a presence announcement lasts without being refreshed.
    #[arg(long, env = "NUDGE_PRESENCE_TTL_SECS", default_value_t = 30)]
    pub presence_ttl_secs: u64,
}

impl Config {
    /// A configuration for tests: port 0, the given data and web directories, defaults elsewhere.
    pub fn for_tests(data_dir: PathBuf, www_dir: PathBuf) -> Self {
        let mut config = Config::parse_from(["nudge"]);
        config.bind = "127.0.0.1:0".parse().expect("a valid literal address");
        config.data_dir = data_dir;
        config.www_dir = www_dir;
        config
    }

    /// The keep-alive interval as a [`Duration`].
    pub fn heartbeat(&self) -> Duration {
        Duration::from_secs(self.heartbeat_secs.max(1))
    }
}
