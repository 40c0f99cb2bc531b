//! Typed configuration. Precedence: flags, then environment variables, then the TOML file
//! (`--config` / `NUDGE_CONFIG`, keys named like the flags: `bind = "0.0.0.0:8080"`), then
//! defaults. Secrets are never printed: `Config` has no `Debug`, and `--help` hides the values
//! of secret environment variables.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser};

/// Every setting of the server; `nudge --help` documents each one.
#[derive(Clone, Parser)]
#[command(
    name = "nudge",
    version,
    about = "Light Server-Sent Events over a durable event log"
)]
pub struct Config {
    /// A TOML file with settings; flags and environment variables override it.
    #[arg(long, env = "NUDGE_CONFIG")]
    pub config: Option<PathBuf>,

    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "NUDGE_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,

    /// Address for HTTPS (HTTP/2 and HTTP/1.1 over TLS); unset, no TLS listener.
    #[arg(long, env = "NUDGE_TLS_BIND")]
    pub tls_bind: Option<SocketAddr>,

    /// PEM certificate chain for HTTPS.
    #[arg(long, env = "NUDGE_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key for HTTPS.
    #[arg(long, env = "NUDGE_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Serve HTTPS with a self-signed development certificate for localhost, made on first use
    /// in the data directory (for development only).
    #[arg(long, env = "NUDGE_TLS_SELF_SIGNED", conflicts_with = "tls_cert")]
    pub tls_self_signed: bool,

    /// Remember the requests of this many recent connections at `/debug/connections`
    /// (0: off). For diagnosis and tests.
    #[arg(long, env = "NUDGE_CONNECTION_LOG", default_value_t = 0)]
    pub connection_log: usize,

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

    /// Seconds a write to a client may make no progress before its connection is closed (an
    /// event stream whose client stopped reading).
    #[arg(long, env = "NUDGE_WRITE_TIMEOUT_SECS", default_value_t = 30)]
    pub write_timeout_secs: u64,

    /// Writes per second allowed per client address (0: unlimited); refused with 429.
    #[arg(long, env = "NUDGE_WRITE_RATE_PER_ADDRESS", default_value_t = 20)]
    pub write_rate_per_address: u32,

    /// Writes one address may make at once above that rate.
    #[arg(long, env = "NUDGE_WRITE_BURST", default_value_t = 60)]
    pub write_burst: u32,

    /// Writes per second allowed per signed-in session (0: unlimited); refused with 429.
    #[arg(long, env = "NUDGE_WRITE_RATE_PER_SESSION", default_value_t = 5)]
    pub write_rate_per_session: u32,

    /// Writes one session may make at once above that rate.
    #[arg(long, env = "NUDGE_SESSION_WRITE_BURST", default_value_t = 20)]
    pub session_write_burst: u32,

    /// Event streams one address may hold open (0: unlimited); more are refused with 429.
    #[arg(long, env = "NUDGE_MAX_STREAMS_PER_ADDRESS", default_value_t = 32)]
    pub max_streams_per_address: usize,

    /// Password hashes (argon2, 19 MiB each while it runs) computed at once (0: one per
    /// core); more sign-ins wait their turn. Hashing never holds more than this × 19 MiB.
    #[arg(long, env = "NUDGE_HASH_CONCURRENCY", default_value_t = 0)]
    pub hash_concurrency: usize,

    /// Milliseconds a sign-in or registration waits for its turn to hash before it is
    /// answered 503 with `Retry-After`.
    #[arg(long, env = "NUDGE_HASH_WAIT_MS", default_value_t = 1000)]
    pub hash_wait_ms: u64,

    /// Sign-in attempts per minute on one account name, from all addresses together (0:
    /// unlimited); more are refused with 429.
    #[arg(long, env = "NUDGE_LOGIN_RATE_PER_NAME", default_value_t = 10)]
    pub login_rate_per_name: u32,

    /// Sign-in attempts per minute from one address, whatever the names (0: unlimited); more
    /// are refused with 429.
    #[arg(long, env = "NUDGE_LOGIN_RATE_PER_ADDRESS", default_value_t = 30)]
    pub login_rate_per_address: u32,
    /// New rooms per hour allowed per client address (0: unlimited); refused with 429.
    #[arg(long, env = "NUDGE_ROOMS_PER_HOUR_PER_ADDRESS", default_value_t = 60)]
    pub rooms_per_hour_per_address: u32,

    /// New rooms per hour allowed per signed-in account (0: unlimited); refused with 429.
    #[arg(long, env = "NUDGE_ROOMS_PER_HOUR_PER_ACCOUNT", default_value_t = 60)]
    pub rooms_per_hour_per_account: u32,

    /// New rooms one address or account may create at once above those rates.
    #[arg(long, env = "NUDGE_ROOM_BURST", default_value_t = 10)]
    pub room_burst: u32,
    /// Event streams one address may open per second (0: unlimited); more are refused with 429.
    /// Each open may replay from the log, so a loop of reconnections must not crowd out reads.
    #[arg(long, env = "NUDGE_STREAM_OPEN_RATE_PER_ADDRESS", default_value_t = 5)]
    pub stream_open_rate_per_address: u32,

    /// Event streams one address may open at once above that rate (a page's reconnection after
    /// a restart, for every tab and device behind one address).
    #[arg(long, env = "NUDGE_STREAM_OPEN_BURST", default_value_t = 32)]
    pub stream_open_burst: u32,

    /// Most events a resuming stream replays (0: no cap); a stream that missed more gets
    /// `reset` (`too_many_missed`) and refetches what it shows, which costs it no more.
    #[arg(long, env = "NUDGE_MAX_REPLAY_EVENTS", default_value_t = 1000)]
    pub max_replay_events: usize,

    /// Take the client address from the last `X-Forwarded-For` hop (only behind a proxy that
    /// sets it, such as nginx).
    #[arg(long, env = "NUDGE_TRUST_FORWARDED_FOR")]
    pub trust_forwarded_for: bool,

    /// The page's own origin(s) as browsers see it (`https://chat.example.com`), comma-separated.
    /// Set, only these count as the site's own for writes; unset, the own origin is taken from
    /// `Host` (and from `X-Forwarded-Host`/`-Proto` only with --trust-forwarded-for).
    #[arg(long, env = "NUDGE_PUBLIC_ORIGIN", value_delimiter = ',')]
    pub public_origin: Vec<String>,

    /// Origins allowed to call the API from other sites (CORS), comma-separated; none by default.
    #[arg(long, env = "NUDGE_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,

    /// Largest accepted request body, in bytes.
    #[arg(long, env = "NUDGE_MAX_BODY_BYTES", default_value_t = 16 * 1024)]
    pub max_body_bytes: usize,

    /// Events kept in the log for resuming streams (older ones are pruned).
    #[arg(long, env = "NUDGE_RETAIN_EVENTS", default_value_t = 100_000)]
    pub retain_events: u64,

    /// Seconds an event is kept in the log for resuming streams.
    #[arg(long, env = "NUDGE_RETAIN_SECS", default_value_t = 7 * 24 * 3600)]
    pub retain_secs: u64,

    /// Seconds a sign-in lasts (the session cookie's lifetime); signing in again starts anew.
    #[arg(long, env = "NUDGE_SESSION_LIFETIME_SECS", default_value_t = 30 * 24 * 3600)]
    pub session_lifetime_secs: u64,

    /// Seconds a presence announcement lasts without being refreshed.
    #[arg(long, env = "NUDGE_PRESENCE_TTL_SECS", default_value_t = 30)]
    pub presence_ttl_secs: u64,

    /// Turns Web Push on: the contact (`mailto:` or `https:`) push services see in the VAPID
    /// claim.
    #[arg(long, env = "NUDGE_PUSH_CONTACT")]
    pub push_contact: Option<String>,

    /// The VAPID private key (PEM), made on first start when missing (default:
    /// `<data-dir>/push/vapid.pem`); on many nodes give every node the same file.
    #[arg(long, env = "NUDGE_PUSH_KEY_FILE")]
    pub push_key_file: Option<PathBuf>,

    /// Accept push endpoints on `http://` loopback addresses (a local push service, for tests).
    #[arg(long, hide = true)]
    pub push_allow_local_http: bool,
}

impl Config {
    /// Reads flags, environment and the TOML file, in that order of precedence. Exits with
    /// clap's message for `--help`, `--version` and bad flags, like `Config::parse`.
    pub fn load() -> anyhow::Result<Self> {
        Self::load_from(std::env::args_os())
    }

    /// [`Config::load`] with explicit arguments (the first is the program name).
    pub fn load_from<I, T>(args: I) -> anyhow::Result<Self>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString>,
    {
        let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
        let command = Config::command();
        let matches = command
            .clone()
            .try_get_matches_from(&args)
            .unwrap_or_else(|e| e.exit());
        let Some(path) = matches.get_one::<PathBuf>("config") else {
            return Ok(Config::from_arg_matches(&matches)?);
        };
        // Settings from the file become flags placed before the real ones, for exactly the
        // settings that neither a flag nor the environment gave: so both still win over it.
        let mut merged = vec![args.first().cloned().unwrap_or_else(|| "nudge".into())];
        for (key, value) in read_table(path)? {
            let id = key.replace('-', "_");
            let arg = command
                .get_arguments()
                .find(|a| a.get_id().as_str() == id && a.get_long().is_some() && id != "config")
                .with_context(|| format!("{}: unknown setting `{key}`", path.display()))?;
            if matches.value_source(&id) != Some(ValueSource::DefaultValue)
                && matches.value_source(&id).is_some()
            {
                continue;
            }
            let flag = format!("--{}", arg.get_long().unwrap_or_default());
            match value {
                toml::Value::Boolean(true) => merged.push(flag.into()),
                toml::Value::Boolean(false) => {}
                toml::Value::String(s) => merged.extend([flag.into(), s.into()]),
                toml::Value::Integer(n) => merged.extend([flag.into(), n.to_string().into()]),
                other => anyhow::bail!(
                    "{}: `{key}` has an unsupported value {other}",
                    path.display()
                ),
            }
        }
        merged.extend(args.into_iter().skip(1));
        let matches = command.try_get_matches_from(merged)?;
        Ok(Config::from_arg_matches(&matches)?)
    }

    /// A configuration for tests: port 0, the given data and web directories, defaults elsewhere.
    pub fn for_tests(data_dir: PathBuf, www_dir: PathBuf) -> Self {
        let mut config = Config::parse_from(["nudge"]);
        config.bind = "127.0.0.1:0".parse().expect("a valid literal address");
        config.data_dir = data_dir;
        config.www_dir = www_dir;
        // Tests hammer one address; the tests of the limits turn them back on.
        config.write_rate_per_address = 0;
        config.write_rate_per_session = 0;
        config.max_streams_per_address = 0;
        config.login_rate_per_name = 0;
        config.login_rate_per_address = 0;
        // Tests sign in side by side on a loaded machine; the tests of the bound shorten it.
        config.hash_wait_ms = 30_000;
        config.rooms_per_hour_per_address = 0;
        config.rooms_per_hour_per_account = 0;
        config.stream_open_rate_per_address = 0;
        config
    }

    /// The write deadline as a [`Duration`].
    pub fn write_timeout(&self) -> Duration {
        Duration::from_secs(self.write_timeout_secs.max(1))
    }

    /// The keep-alive interval as a [`Duration`].
    pub fn heartbeat(&self) -> Duration {
        Duration::from_secs(self.heartbeat_secs.max(1))
    }

    /// What nudge runs with, from these settings.
    pub fn nudge_settings(&self) -> nudge::Settings {
        nudge::Settings {
            stream_path: "/api/events".to_owned(),
            heartbeat: self.heartbeat(),
            subscriber_buffer: self.subscriber_buffer,
            send_buffer_bytes: self.send_buffer_bytes,
            write_timeout: self.write_timeout(),
            max_streams_per_address: self.max_streams_per_address,
            stream_open_rate_per_address: self.stream_open_rate_per_address,
            stream_open_burst: self.stream_open_burst,
            max_replay_events: self.max_replay_events,
            trust_forwarded_for: self.trust_forwarded_for,
            public_origin: self.public_origin.clone(),
            cors_origins: self.cors_origins.clone(),
            retention: nudge::Retention {
                max_events: self.retain_events,
                max_age_secs: self.retain_secs,
            },
            connection_log: self.connection_log,
            push: self.push_contact.as_ref().map(|contact| {
                let key_file = self
                    .push_key_file
                    .clone()
                    .unwrap_or_else(|| self.data_dir.join("push").join("vapid.pem"));
                let mut push = nudge::push::PushSettings::new(contact.clone(), key_file);
                push.allow_local_http = self.push_allow_local_http;
                push
            }),
        }
    }
}

fn read_table(path: &Path) -> anyhow::Result<toml::Table> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the configuration file {}", path.display()))?;
    text.parse()
        .with_context(|| format!("parsing the configuration file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_file(toml: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), toml).unwrap();
        file
    }

    #[test]
    fn the_file_fills_what_flags_leave_unset_and_flags_win() {
        let file =
            with_file("bind = \"127.0.0.1:9000\"\nheartbeat-secs = 5\nmax_body_bytes = 100\n");
        let path = file.path().to_str().unwrap();
        let config =
            Config::load_from(["nudge", "--config", path, "--max-body-bytes", "200"]).unwrap();
        assert_eq!(config.bind.port(), 9000);
        assert_eq!(config.heartbeat_secs, 5);
        assert_eq!(config.max_body_bytes, 200, "the flag wins over the file");
        assert_eq!(config.retain_events, 100_000, "defaults fill the rest");
    }

    #[test]
    fn unknown_settings_in_the_file_are_refused() {
        let file = with_file("bnid = \"127.0.0.1:9000\"\n");
        let path = file.path().to_str().unwrap();
        let error = Config::load_from(["nudge", "--config", path])
            .err()
            .unwrap();
        assert!(
            error.to_string().contains("unknown setting `bnid`"),
            "{error}"
        );
    }
}
