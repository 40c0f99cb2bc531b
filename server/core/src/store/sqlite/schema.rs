//! The log's SQLite schema, the app's migrations beside it, and connection settings.
//!
//! Each component (nudge itself, then each app's [`Migrations`]) has its own version in
//! `nudge_migrations`; its steps run in order, each in its own transaction with the version
//! it reaches.

use rusqlite::{Connection, OptionalExtension};

use crate::store::{LogRange, Migrations, StoreResult};

/// The component name of nudge's own tables.
const CORE: &str = "nudge";

/// nudge's own steps: the log, then the notes beside it and stored answers.
const STEPS: &[&str] = &[
    r#"
    -- AUTOINCREMENT: ids are never reused after retention removed the newest rows.
    CREATE TABLE events (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        topic       TEXT NOT NULL,
        url         TEXT NOT NULL,
        created_at  INTEGER NOT NULL
    );
    -- A resuming stream reads only its topics' events: one search per exact topic, one range
    -- per prefix (BINARY collation: byte order, so a prefix is one range).
    CREATE INDEX events_by_topic ON events(topic, id);
    CREATE TABLE log_meta (
        key         TEXT PRIMARY KEY,
        value       INTEGER NOT NULL
    ) WITHOUT ROWID;
    INSERT INTO log_meta (key, value) VALUES ('pruned_through', 0);
"#,
    r#"
    -- A note for the app's Audience on every node (never sent to clients).
    ALTER TABLE events ADD COLUMN note TEXT;
    -- The first answer to each Idempotency-Key (see crate::idempotency).
    CREATE TABLE nudge_idempotency (
        key         TEXT PRIMARY KEY,
        request     BLOB NOT NULL,              -- a digest of the request, to tell a retry from a reuse
        status      INTEGER NOT NULL,
        headers     TEXT NOT NULL,              -- JSON: [[name, value], ...]
        body        BLOB NOT NULL,
        created_at  INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX nudge_idempotency_by_age ON nudge_idempotency(created_at);
"#,
    r#"
    -- Web Push subscriptions (see crate::push): who made each, and the topics it wants.
    CREATE TABLE nudge_push_subscriptions (
        endpoint    TEXT PRIMARY KEY,
        p256dh      BLOB NOT NULL,
        auth        BLOB NOT NULL,
        principal   TEXT,
        topics      TEXT NOT NULL,              -- JSON: ["todos", "lists/*"]
        created_at  INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX nudge_push_by_principal ON nudge_push_subscriptions(principal);
"#,
];

/// WAL for readers beside the writer; `synchronous=FULL` so a commit is on disk when it returns.
pub fn configure_writer(conn: &Connection) -> StoreResult<()> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(())
}

/// Brings nudge's tables, then each app's, up to date.
pub fn migrate(conn: &mut Connection, apps: &[Migrations]) -> StoreResult<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS nudge_migrations (
            component TEXT PRIMARY KEY,
            version   INTEGER NOT NULL
        ) WITHOUT ROWID;",
    )?;
    adopt_single_schema(conn, apps)?;
    run(conn, CORE, STEPS)?;
    for app in apps {
        run(conn, app.component, app.sqlite)?;
    }
    Ok(())
}

/// A database made before the log and the app had schemas of their own (one list of steps,
/// counted by `PRAGMA user_version`, which reached 4) holds nudge's first step and the app's
/// first step: it is recorded so, and nothing is run again.
fn adopt_single_schema(conn: &mut Connection, apps: &[Migrations]) -> StoreResult<()> {
    let single: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if single != 4 || version(conn, CORE)? != 0 {
        return Ok(());
    }
    let tx = conn.transaction()?;
    tx.execute(
        "INSERT INTO nudge_migrations (component, version) VALUES (?1, 1)",
        [CORE],
    )?;
    for app in apps {
        tx.execute(
            "INSERT INTO nudge_migrations (component, version) VALUES (?1, 1)",
            [app.component],
        )?;
    }
    tx.pragma_update(None, "user_version", 0)?;
    tx.commit()?;
    tracing::info!("adopted a database from before the split of the log and the app's schema");
    Ok(())
}

fn version(conn: &Connection, component: &str) -> StoreResult<usize> {
    let version: Option<i64> = conn
        .query_row(
            "SELECT version FROM nudge_migrations WHERE component = ?1",
            [component],
            |r| r.get(0),
        )
        .optional()?;
    Ok(version.unwrap_or(0).max(0) as usize)
}

fn run(conn: &mut Connection, component: &str, steps: &[&str]) -> StoreResult<()> {
    let current = version(conn, component)?;
    for (version, sql) in steps.iter().enumerate().skip(current) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO nudge_migrations (component, version) VALUES (?1, ?2)
             ON CONFLICT (component) DO UPDATE SET version = excluded.version",
            rusqlite::params![component, version as i64 + 1],
        )?;
        tx.commit()?;
    }
    Ok(())
}

/// The largest event id ever committed (0 for a new log).
pub fn head(conn: &Connection) -> StoreResult<i64> {
    Ok(conn
        .query_row(
            "SELECT seq FROM sqlite_sequence WHERE name = 'events'",
            [],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0))
}

/// What a stream can resume from.
pub fn log_range(conn: &Connection) -> StoreResult<LogRange> {
    let pruned_through = conn.query_row(
        "SELECT value FROM log_meta WHERE key = 'pruned_through'",
        [],
        |r| r.get(0),
    )?;
    Ok(LogRange {
        pruned_through,
        head: head(conn)?,
    })
}
