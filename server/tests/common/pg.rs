//! A throwaway PostgreSQL cluster for tests and the benchmark: `initdb` in a temporary
//! directory, listening only on a Unix socket inside it (so no port can clash with anything),
//! a fresh database per test.
//!
//! Clean-up does not depend on Rust destructors (a shared cluster lives in a `static`, which is
//! never dropped): a small watchdog shell, in its own process group so that Ctrl-C on the tests
//! does not reach it, reads its standard input from this process. When this process ends in any
//! way, even killed, that pipe closes; the watchdog then stops the server (SIGQUIT, then SIGKILL)
//! and removes the directory. Running as root, the server runs as the `postgres` user (initdb
//! refuses root); otherwise as the current user.
#![allow(dead_code)]

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

/// Stops the server and removes the directory once standard input closes.
const WATCHDOG: &str = r#"
read _ignored
pid=$(head -n 1 "$1/data/postmaster.pid" 2>/dev/null)
if [ -n "$pid" ]; then
    kill -QUIT "$pid" 2>/dev/null
    tries=0
    while kill -0 "$pid" 2>/dev/null && [ "$tries" -lt 100 ]; do
        sleep 0.05
        tries=$((tries + 1))
    done
    kill -KILL "$pid" 2>/dev/null
fi
rm -rf "$1"
"#;

/// Settings for a cluster.
#[derive(Clone, Copy)]
pub struct Options {
    /// `fsync` on (durable, for the benchmark) or off (fast, for tests).
    pub fsync: bool,
}

/// A running cluster; dropping it (or ending the process) stops and removes it.
pub struct Cluster {
    dir: PathBuf,
    bin: PathBuf,
    user: Option<(u32, u32)>,
    watchdog: Mutex<Option<(Child, ChildStdin)>>,
    next_database: AtomicUsize,
}

impl Cluster {
    /// One cluster for the whole test binary, started on first use.
    pub fn shared() -> &'static Cluster {
        static SHARED: OnceLock<Cluster> = OnceLock::new();
        SHARED.get_or_init(|| Cluster::start(Options { fsync: false }))
    }

    /// Creates, configures and starts a new cluster.
    pub fn start(options: Options) -> Cluster {
        // In /tmp, whatever TMPDIR says: the `postgres` user must reach it, and a Unix socket
        // path must stay under about 100 bytes.
        let dir = tempfile::Builder::new()
            .prefix("nudge-pg")
            .tempdir_in("/tmp")
            .expect("a temporary directory")
            .keep();
        let watchdog = watchdog(&dir);
        let root = std::fs::metadata(&dir).expect("the directory").uid() == 0;
        let user = root.then(postgres_user);
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).expect("chown to postgres");
        }
        let cluster = Cluster {
            bin: bin_dir(),
            dir,
            user,
            watchdog: Mutex::new(Some(watchdog)),
            next_database: AtomicUsize::new(0),
        };
        let data = cluster.data_dir();
        cluster.run(
            "initdb",
            &[
                "-D",
                path_str(&data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
        );
        let settings = format!(
            "listen_addresses = ''\nunix_socket_directories = '{}'\nport = 5432\n\
             max_connections = 300\nfsync = {}\nfull_page_writes = {}\n",
            path_str(&cluster.dir),
            if options.fsync { "on" } else { "off" },
            if options.fsync { "on" } else { "off" },
        );
        std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .and_then(|mut f| f.write_all(settings.as_bytes()))
            .expect("postgresql.conf is writable");
        cluster.start_server();
        cluster
    }

    /// A URL for a new, empty database of its own.
    pub fn fresh_database(&self) -> String {
        let n = self.next_database.fetch_add(1, Ordering::Relaxed);
        let name = format!("nudge_{}_{n}", std::process::id());
        let status = Command::new(self.bin.join("createdb"))
            .args([
                "-h",
                path_str(&self.dir),
                "-p",
                "5432",
                "-U",
                "postgres",
                &name,
            ])
            .stdin(Stdio::null())
            .status()
            .expect("createdb runs");
        assert!(status.success(), "createdb {name} failed");
        self.url(&name)
    }

    /// The URL of database `name`: the socket directory, percent-encoded, as the host.
    pub fn url(&self, name: &str) -> String {
        let host = path_str(&self.dir).replace('/', "%2F");
        format!("postgres://postgres@{host}:5432/{name}")
    }

    /// Stops the server (fast shutdown: clients are disconnected), keeping its data.
    pub fn stop_server(&self) {
        self.run(
            "pg_ctl",
            &[
                "stop",
                "-D",
                path_str(&self.data_dir()),
                "-m",
                "fast",
                "-w",
                "-s",
            ],
        );
    }

    /// Starts the server again, returning once it accepts connections.
    pub fn start_server(&self) {
        let log = self.dir.join("server.log");
        self.run(
            "pg_ctl",
            &[
                "start",
                "-D",
                path_str(&self.data_dir()),
                "-l",
                path_str(&log),
                "-w",
                "-t",
                "60",
                "-s",
            ],
        );
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Runs one of the server's programs as the server's user, failing loudly.
    fn run(&self, program: &str, args: &[&str]) {
        let mut command = Command::new(self.bin.join(program));
        command
            .args(args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            // Its own group: the server it may start must not get the terminal's Ctrl-C.
            .process_group(0);
        if let Some((uid, gid)) = self.user {
            command.uid(uid).gid(gid);
        }
        let output = command
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e}"));
        assert!(
            output.status.success(),
            "{program} {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&output.stderr),
            std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let watchdog = self
            .watchdog
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some((mut child, stdin)) = watchdog {
            drop(stdin);
            let _ = child.wait();
        }
    }
}

fn watchdog(dir: &Path) -> (Child, ChildStdin) {
    let mut child = Command::new("sh")
        .args(["-c", WATCHDOG, "nudge-pg-watchdog"])
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("the watchdog shell starts");
    let stdin = child.stdin.take().expect("piped stdin");
    (child, stdin)
}

/// The uid and gid of the `postgres` user, from `/etc/passwd`.
fn postgres_user() -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").expect("/etc/passwd");
    passwd
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.first() == Some(&"postgres") && fields.len() > 3)
                .then(|| Some((fields[2].parse().ok()?, fields[3].parse().ok()?)))
                .flatten()
        })
        .expect("running as root needs a `postgres` user (Debian's postgresql packages make one)")
}

/// `NUDGE_PG_BIN`, or the newest `/usr/lib/postgresql/*/bin`.
fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("NUDGE_PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .expect("PostgreSQL server binaries in /usr/lib/postgresql/*/bin (or set NUDGE_PG_BIN)")
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}
