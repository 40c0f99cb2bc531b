//! Watercooler's SQLite tables, migrated by nudge after its own ([`super::super::MIGRATIONS`]).
//! The first step is the layout the chat had when it shared one list of steps with the log,
//! so that such a database is adopted as it is.

/// Each entry moves Watercooler's tables from version `index` to `index + 1`.
pub const MIGRATIONS: &[&str] = &[r#"
    CREATE TABLE rooms (
        name          TEXT PRIMARY KEY,
        created_at    INTEGER NOT NULL,
        created_event INTEGER NOT NULL,         -- id of the event that announced it
        version       INTEGER NOT NULL,         -- id of the room's newest event
        private       INTEGER NOT NULL DEFAULT 0
    ) WITHOUT ROWID;
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
    -- Accounts, sessions and private rooms.
    CREATE TABLE users (
        name          TEXT PRIMARY KEY,
        password_hash TEXT NOT NULL,            -- argon2, PHC string
        created_at    INTEGER NOT NULL,
        -- A name is one account whatever its case or width: its key (domain::names) is unique.
        name_key      TEXT
    ) WITHOUT ROWID;
    CREATE UNIQUE INDEX users_by_name_key ON users(name_key);
    CREATE TABLE sessions (
        token_hash  BLOB PRIMARY KEY,           -- SHA-256 of the cookie's token, never the token
        user        TEXT NOT NULL REFERENCES users(name),
        created_at  INTEGER NOT NULL,
        expires_at  INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX sessions_by_expiry ON sessions(expires_at);
    CREATE TABLE members (
        room        TEXT NOT NULL REFERENCES rooms(name),
        user        TEXT NOT NULL REFERENCES users(name),
        added_at    INTEGER NOT NULL,
        PRIMARY KEY (room, user)
    ) WITHOUT ROWID;
    CREATE INDEX members_by_user ON members(user);
    -- The newest membership event: the room list changes with it too.
    INSERT INTO log_meta (key, value) VALUES ('members_version', 0);
"#];
