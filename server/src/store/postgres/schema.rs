//! The PostgreSQL schema and its versioned migrations.
//!
//! Writes live in SQL functions (`nudge_append`, `nudge_create_room`, `nudge_member_change`,
//! `nudge_prune`) so that a batch costs few statements: consecutive appends travel as one call
//! with arrays, and the writer pipelines the calls of a batch into one transaction without
//! waiting for each answer. Every one of them takes the commit lock first (see
//! [`COMMIT_LOCK`]), so the ordering rule holds whoever calls them.

use tokio_postgres::Client;

use super::conn::store_error;
use crate::domain::{ROOMS_TOPIC, ROOMS_URL};
use crate::store::StoreResult;

/// The transaction-level advisory lock every write transaction holds from its first write to its
/// commit. Event ids come from a sequence, but only while this lock is held, so a transaction
/// that got smaller ids has committed (and is visible) before the next one gets any id: ids
/// increase in commit order. PostgreSQL makes a commit visible before it releases locks, so a
/// reader that sees id N also sees every id below N that will ever exist.
pub const COMMIT_LOCK: i64 = 0x6e75_6467_6501;

/// The session-level advisory lock held while migrating, so nodes that start together migrate
/// once, one after the other.
const MIGRATION_LOCK: i64 = 0x6e75_6467_6502;

/// Each entry moves the schema from version `index` to `index + 1`, in one transaction.
const MIGRATIONS: &[&str] = &[
    r#"
    -- A room's version (its newest event) is read from its newest message rather than kept
    -- here: updating one hot row per message would cost every write more than reads gain.
    CREATE TABLE rooms (
        name          text PRIMARY KEY,
        created_at    bigint NOT NULL,
        created_event bigint NOT NULL           -- id of the event that announced it
    );
    -- Only ever advanced while COMMIT_LOCK is held; a rolled-back transaction leaves a gap,
    -- which readers never mind (they ask for ids greater than the last one they saw).
    CREATE SEQUENCE event_ids;
    CREATE TABLE events (
        id          bigint PRIMARY KEY,
        topic       text NOT NULL,
        url         text NOT NULL,
        created_at  bigint NOT NULL
    );
    -- No foreign key to rooms: nudge_append creates the room first, under the commit lock,
    -- and the key's check would lock the room's row on every message.
    CREATE TABLE messages (
        id          bigserial PRIMARY KEY,
        room        text NOT NULL,
        author      text NOT NULL,
        text        text NOT NULL,
        created_at  bigint NOT NULL,
        event_id    bigint NOT NULL
    );
    CREATE INDEX messages_by_room ON messages (room, id);
    -- The primary key also guards against a duplicate that bypassed the commit lock.
    CREATE TABLE idempotency (
        key         text PRIMARY KEY,
        request     text NOT NULL,              -- the request, to tell a retry from a reuse
        message_id  bigint NOT NULL,
        created_at  bigint NOT NULL
    );
    CREATE TABLE log_meta (
        singleton       boolean PRIMARY KEY DEFAULT true CHECK (singleton),
        pruned_through  bigint NOT NULL
    );
    INSERT INTO log_meta (pruned_through) VALUES (0);

    -- One clock for every node: the database's.
    CREATE FUNCTION nudge_now_ms() RETURNS bigint LANGUAGE sql VOLATILE AS
        $$ SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint $$;

    CREATE FUNCTION nudge_head() RETURNS bigint LANGUAGE sql STABLE AS $$
        SELECT GREATEST(COALESCE((SELECT max(id) FROM events), 0),
                        (SELECT pruned_through FROM log_meta))
    $$;

    CREATE FUNCTION nudge_log_event(p_topic text, p_url text) RETURNS bigint
    LANGUAGE plpgsql AS $$
    DECLARE v_id bigint;
    BEGIN
        PERFORM pg_advisory_xact_lock(COMMIT_LOCK);
        INSERT INTO events (id, topic, url, created_at)
        VALUES (nextval('event_ids'), p_topic, p_url, nudge_now_ms())
        RETURNING id INTO v_id;
        RETURN v_id;
    END $$;

    CREATE FUNCTION nudge_create_room(p_room text, p_rooms_topic text, p_rooms_url text)
    RETURNS boolean LANGUAGE plpgsql AS $$
    DECLARE v_event bigint;
    BEGIN
        PERFORM pg_advisory_xact_lock(COMMIT_LOCK);
        IF EXISTS (SELECT 1 FROM rooms WHERE name = p_room) THEN
            RETURN false;
        END IF;
        v_event := nudge_log_event(p_rooms_topic, p_rooms_url);
        INSERT INTO rooms (name, created_at, created_event)
        VALUES (p_room, nudge_now_ms(), v_event);
        RETURN true;
    END $$;

    -- Appends a batch of messages (element i of each array is message i), returning one row
    -- per message in order. outcome is 'stored', 'replayed' or 'conflict' (then the other
    -- columns are null). One call per batch keeps the per-message cost to the inserts.
    CREATE FUNCTION nudge_append(
        p_rooms text[], p_authors text[], p_texts text[], p_keys text[], p_requests text[],
        p_topics text[], p_urls text[], p_rooms_topic text, p_rooms_url text)
    RETURNS TABLE (outcome text, o_id bigint, o_room text, o_author text, o_text text,
                   o_created_at bigint, o_event_id bigint)
    LANGUAGE plpgsql AS $$
    DECLARE
        v_request text;
        v_message bigint;
    BEGIN
        -- Taken before any key is looked up: a duplicate on another node waits for this
        -- commit and then finds the key.
        PERFORM pg_advisory_xact_lock(COMMIT_LOCK);
        FOR i IN 1 .. coalesce(array_length(p_rooms, 1), 0) LOOP
            outcome := NULL; o_id := NULL; o_room := NULL; o_author := NULL;
            o_text := NULL; o_created_at := NULL; o_event_id := NULL;
            IF p_keys[i] IS NOT NULL THEN
                SELECT k.request, k.message_id INTO v_request, v_message
                FROM idempotency k WHERE k.key = p_keys[i];
                IF FOUND THEN
                    IF v_request <> p_requests[i] THEN
                        outcome := 'conflict';
                    ELSE
                        outcome := 'replayed';
                        SELECT m.id, m.room, m.author, m.text, m.created_at, m.event_id
                        INTO o_id, o_room, o_author, o_text, o_created_at, o_event_id
                        FROM messages m WHERE m.id = v_message;
                    END IF;
                    RETURN NEXT;
                    CONTINUE;
                END IF;
            END IF;
            IF NOT EXISTS (SELECT 1 FROM rooms r WHERE r.name = p_rooms[i]) THEN
                PERFORM nudge_create_room(p_rooms[i], p_rooms_topic, p_rooms_url);
            END IF;
            o_created_at := nudge_now_ms();
            INSERT INTO events (id, topic, url, created_at)
            VALUES (nextval('event_ids'), p_topics[i], p_urls[i], o_created_at)
            RETURNING id INTO o_event_id;
            INSERT INTO messages (room, author, text, created_at, event_id)
            VALUES (p_rooms[i], p_authors[i], p_texts[i], o_created_at, o_event_id)
            RETURNING id INTO o_id;
            IF p_keys[i] IS NOT NULL THEN
                INSERT INTO idempotency (key, request, message_id, created_at)
                VALUES (p_keys[i], p_requests[i], o_id, o_created_at);
            END IF;
            outcome := 'stored';
            o_room := p_rooms[i];
            o_author := p_authors[i];
            o_text := p_texts[i];
            RETURN NEXT;
        END LOOP;
    END $$;

    CREATE FUNCTION nudge_prune(p_max_events bigint, p_max_age_ms bigint) RETURNS bigint
    LANGUAGE plpgsql AS $$
    DECLARE
        v_cutoff bigint;
        v_by_age bigint;
        v_through bigint;
        v_removed bigint;
    BEGIN
        PERFORM pg_advisory_xact_lock(COMMIT_LOCK);
        v_cutoff := nudge_now_ms() - p_max_age_ms;
        SELECT COALESCE(max(id), 0) INTO v_by_age FROM events WHERE created_at < v_cutoff;
        v_through := GREATEST(nudge_head() - p_max_events, v_by_age);
        IF v_through <= 0 THEN
            RETURN 0;
        END IF;
        DELETE FROM events WHERE id <= v_through;
        GET DIAGNOSTICS v_removed = ROW_COUNT;
        UPDATE log_meta SET pruned_through = GREATEST(pruned_through, v_through);
        -- Idempotency records live as long as the log: a retry older than that is not a retry.
        DELETE FROM idempotency WHERE created_at < v_cutoff;
        RETURN v_removed;
    END $$;
"#,
    r#"
    -- Accounts: users, sessions (only the SHA-256 of a token is kept) and private rooms.
    CREATE TABLE users (
        name           text PRIMARY KEY,
        password_hash  text NOT NULL,
        created_at     bigint NOT NULL
    );
    CREATE TABLE sessions (
        token_hash  bytea PRIMARY KEY,
        user_name   text NOT NULL REFERENCES users (name),
        created_at  bigint NOT NULL,
        expires_at  bigint NOT NULL             -- milliseconds, by the clock of the node
    );
    CREATE INDEX sessions_by_user ON sessions (user_name);
    ALTER TABLE rooms ADD COLUMN private boolean NOT NULL DEFAULT false;
    CREATE TABLE members (
        room        text NOT NULL REFERENCES rooms (name),
        user_name   text NOT NULL REFERENCES users (name),
        added_at    bigint NOT NULL,
        PRIMARY KEY (room, user_name)
    );
    CREATE INDEX members_by_user ON members (user_name);
    -- Every membership change, keyed by the event that announced it: each node's follower
    -- applies it to its access view just before it publishes that event, so every node
    -- changes its view in commit order. Kept when events are pruned (changes are rare).
    CREATE TABLE access_changes (
        event_id    bigint PRIMARY KEY,
        kind        text NOT NULL CHECK (kind IN ('private', 'add', 'remove')),
        room        text NOT NULL,
        user_name   text NOT NULL
    );
    -- The newest membership event: the room list's version counts it.
    ALTER TABLE log_meta ADD COLUMN members_version bigint NOT NULL DEFAULT 0;

    -- Creates a private room ('private', p_by its creator) or has member p_by add or remove
    -- p_user; every refusal is decided before anything is written. outcome is 'changed' (then
    -- o_event is the logged event), 'unchanged', or the refusal: 'room_exists', 'no_such_room',
    -- 'room_is_public', 'not_a_member', 'no_such_user'.
    CREATE FUNCTION nudge_member_change(p_kind text, p_room text, p_by text, p_user text,
                                        p_rooms_topic text, p_rooms_url text)
    RETURNS TABLE (outcome text, o_event bigint) LANGUAGE plpgsql AS $$
    DECLARE
        v_private boolean;
    BEGIN
        PERFORM pg_advisory_xact_lock(COMMIT_LOCK);
        SELECT r.private INTO v_private FROM rooms r WHERE r.name = p_room;
        IF p_kind = 'private' THEN
            IF v_private IS NOT NULL THEN
                IF v_private AND EXISTS (SELECT 1 FROM members m
                                         WHERE m.room = p_room AND m.user_name = p_by) THEN
                    outcome := 'unchanged';
                ELSE
                    outcome := 'room_exists';
                END IF;
                RETURN NEXT;
                RETURN;
            END IF;
            IF NOT EXISTS (SELECT 1 FROM users u WHERE u.name = p_by) THEN
                outcome := 'no_such_user';
                RETURN NEXT;
                RETURN;
            END IF;
            PERFORM nudge_create_room(p_room, p_rooms_topic, p_rooms_url);
            UPDATE rooms r SET private = true WHERE r.name = p_room
            RETURNING r.created_event INTO o_event;
            INSERT INTO members (room, user_name, added_at) VALUES (p_room, p_by, nudge_now_ms());
        ELSE
            IF v_private IS NULL THEN
                outcome := 'no_such_room';
            ELSIF NOT v_private THEN
                outcome := 'room_is_public';
            ELSIF NOT EXISTS (SELECT 1 FROM members m
                              WHERE m.room = p_room AND m.user_name = p_by) THEN
                outcome := 'not_a_member';
            ELSIF p_kind = 'add' AND NOT EXISTS (SELECT 1 FROM users u WHERE u.name = p_user) THEN
                outcome := 'no_such_user';
            ELSIF p_kind = 'add' AND EXISTS (SELECT 1 FROM members m
                                             WHERE m.room = p_room AND m.user_name = p_user) THEN
                outcome := 'unchanged';
            ELSIF p_kind = 'remove' AND NOT EXISTS (SELECT 1 FROM members m
                                  WHERE m.room = p_room AND m.user_name = p_user) THEN
                outcome := 'unchanged';
            END IF;
            IF outcome IS NOT NULL THEN
                RETURN NEXT;
                RETURN;
            END IF;
            IF p_kind = 'add' THEN
                INSERT INTO members (room, user_name, added_at)
                VALUES (p_room, p_user, nudge_now_ms());
            ELSE
                DELETE FROM members m WHERE m.room = p_room AND m.user_name = p_user;
            END IF;
            o_event := nudge_log_event(p_rooms_topic, p_rooms_url);
        END IF;
        INSERT INTO access_changes (event_id, kind, room, user_name)
        VALUES (o_event, p_kind, p_room, CASE WHEN p_kind = 'private' THEN p_by ELSE p_user END);
        UPDATE log_meta SET members_version = o_event;
        outcome := 'changed';
        RETURN NEXT;
    END $$;
"#,
    r#"
    -- A name is one account whatever its case or width: its key (domain::names) is unique.
    -- Keys of earlier users are filled in by accounts::backfill_name_keys, which runs after
    -- every migration.
    ALTER TABLE users ADD COLUMN name_key text UNIQUE;
"#,
    r#"
    -- v4: a resuming stream reads only its topics' events: exact topics as one `= ANY` search,
    -- each prefix as one range. In byte order ("C") whatever the database's collation, so that
    -- a prefix is one range; the replay's conditions name the same collation.
    CREATE INDEX events_by_topic ON events (topic COLLATE "C", id);
"#,
];

/// Brings the schema up to date under [`MIGRATION_LOCK`], then makes sure `general` exists.
pub async fn migrate(client: &mut Client) -> StoreResult<()> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(store_error)?;
    let migrated = migrate_locked(client).await;
    // Unlocking can only fail with the connection, which releases the lock anyway.
    let _ = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await;
    migrated
}

async fn migrate_locked(client: &mut Client) -> StoreResult<()> {
    client
        .batch_execute("CREATE TABLE IF NOT EXISTS nudge_schema (version integer NOT NULL)")
        .await
        .map_err(store_error)?;
    let current: Option<i32> = client
        .query_opt("SELECT max(version) FROM nudge_schema", &[])
        .await
        .map_err(store_error)?
        .and_then(|row| row.get(0));
    let current = current.unwrap_or(0).max(0) as usize;
    for (version, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = client.transaction().await.map_err(store_error)?;
        tx.batch_execute(&sql.replace("COMMIT_LOCK", &COMMIT_LOCK.to_string()))
            .await
            .map_err(store_error)?;
        tx.execute(
            "INSERT INTO nudge_schema (version) VALUES ($1)",
            &[&(version as i32 + 1)],
        )
        .await
        .map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        tracing::info!(version = version + 1, "migrated the PostgreSQL schema");
    }
    super::accounts::backfill_name_keys(client).await?;
    client
        .execute(
            "SELECT nudge_create_room('general', $1, $2)",
            &[&ROOMS_TOPIC, &ROOMS_URL],
        )
        .await
        .map_err(store_error)?;
    Ok(())
}
