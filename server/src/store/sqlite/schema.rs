//! The SQLite schema, its migrations (by `PRAGMA user_version`), and connection settings.

use rusqlite::{Connection, OptionalExtension};

use crate::store::{LogRange, StoreResult};

/// Each entry moves the schema from version `index` to `index + 1`.
const MIGRATIONS: &[&str] = &[
    r#"
    CREATE TABLE rooms (
        name        TEXT PRIMARY KEY,
        created_at  INTEGER NOT NULL,
        created_event INTEGER NOT NULL,         -- id of the event that announced it
        version     INTEGER NOT NULL            -- id of the room's newest event
    ) WITHOUT ROWID;
    -- AUTOINCREMENT: ids are never reused after retention removed the newest rows.
    CREATE TABLE events (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        topic       TEXT NOT NULL,
        url         TEXT NOT NULL,
        created_at  INTEGER NOT NULL
    );
    CREATE TABLE messages (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        room        TEXT NOT NULL REFERENCES rooms(name),
        author      TEXT NOT NULL,
        text        TEXT NOT NULL,
        created_at  INTEGER NOT NULL,
        event_id    INTEGER NOT NULL
    );
    CREATE INDEX messages_by_room ON messages(room, id);
    CREATE TABLE idempotency (
        key         TEXT PRIMARY KEY,
        request     TEXT NOT NULL,              -- the request, to tell a retry from a reuse
        message_id  INTEGER NOT NULL,
        created_at  INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE log_meta (
        key         TEXT PRIMARY KEY,
        value       INTEGER NOT NULL
    ) WITHOUT ROWID;
    INSERT INTO log_meta (key, value) VALUES ('pruned_through', 0);
"#,
    r#"
    -- v2: accounts, sessions and private rooms.
    CREATE TABLE users (
        name          TEXT PRIMARY KEY,
        password_hash TEXT NOT NULL,            -- argon2, PHC string
        created_at    INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE sessions (
        token_hash  BLOB PRIMARY KEY,           -- SHA-256 of the cookie's token, never the token
        user        TEXT NOT NULL REFERENCES users(name),
        created_at  INTEGER NOT NULL,
        expires_at  INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX sessions_by_expiry ON sessions(expires_at);
    ALTER TABLE rooms ADD COLUMN private INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE members (
        room        TEXT NOT NULL REFERENCES rooms(name),
        user        TEXT NOT NULL REFERENCES users(name),
        added_at    INTEGER NOT NULL,
        PRIMARY KEY (room, user)
    ) WITHOUT ROWID;
    CREATE INDEX members_by_user ON members(user);
    -- The newest membership event: the room list changes with it too.
    INSERT INTO log_meta (key, value) VALUES ('members_version', 0);
"#,
    r#"
    -- v3: a name is one account whatever its case or width: its key (domain::names) is unique.
    -- Keys of earlier users are filled in by accounts::backfill_name_keys, which runs after
    -- every migration.
    ALTER TABLE users ADD COLUMN name_key TEXT;
    CREATE UNIQUE INDEX users_by_name_key ON users(name_key);
"#,
    r#"
    -- v4: a resuming stream reads only its topics' events: one search per exact topic, one
    -- range per prefix (BINARY collation: byte order, so a prefix is one range).
    CREATE INDEX events_by_topic ON events(topic, id);
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

/// Brings the schema up to date, each step in its own transaction.
pub fn migrate(conn: &mut Connection) -> StoreResult<()> {
    let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for (version, sql) in MIGRATIONS.iter().enumerate().skip(current.max(0) as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version as i64 + 1)?;
        tx.commit()?;
    }
    super::accounts::backfill_name_keys(conn)
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
