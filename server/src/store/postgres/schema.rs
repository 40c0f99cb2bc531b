//! The PostgreSQL schema and its versioned migrations.
//!
//! Writes live in SQL functions (`nudge_append`, `nudge_create_room`, `nudge_prune`) so that
//! one write is one statement: the writer pipelines a whole batch of them into one transaction
//! without waiting for each answer. Every one of them takes the commit lock first (see
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
const MIGRATIONS: &[&str] = &[r#"
    CREATE TABLE rooms (
        name          text PRIMARY KEY,
        created_at    bigint NOT NULL,
        created_event bigint NOT NULL,          -- id of the event that announced it
        version       bigint NOT NULL           -- id of the room's newest event
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
    CREATE TABLE messages (
        id          bigserial PRIMARY KEY,
        room        text NOT NULL REFERENCES rooms(name),
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
        INSERT INTO rooms (name, created_at, created_event, version)
        VALUES (p_room, nudge_now_ms(), v_event, v_event);
        RETURN true;
    END $$;

    -- outcome is 'stored', 'replayed' or 'conflict' (then the other columns are null).
    CREATE FUNCTION nudge_append(
        p_room text, p_author text, p_text text, p_key text, p_request text,
        p_topic text, p_url text, p_rooms_topic text, p_rooms_url text,
        OUT outcome text, OUT o_id bigint, OUT o_room text, OUT o_author text,
        OUT o_text text, OUT o_created_at bigint, OUT o_event_id bigint)
    LANGUAGE plpgsql AS $$
    DECLARE
        v_request text;
        v_message bigint;
    BEGIN
        -- Taken before the key is looked up: a duplicate on another node waits for this
        -- commit and then finds the key.
        PERFORM pg_advisory_xact_lock(COMMIT_LOCK);
        IF p_key IS NOT NULL THEN
            SELECT i.request, i.message_id INTO v_request, v_message
            FROM idempotency i WHERE i.key = p_key;
            IF FOUND THEN
                IF v_request <> p_request THEN
                    outcome := 'conflict';
                    RETURN;
                END IF;
                outcome := 'replayed';
                SELECT m.id, m.room, m.author, m.text, m.created_at, m.event_id
                INTO o_id, o_room, o_author, o_text, o_created_at, o_event_id
                FROM messages m WHERE m.id = v_message;
                RETURN;
            END IF;
        END IF;
        PERFORM nudge_create_room(p_room, p_rooms_topic, p_rooms_url);
        o_event_id := nudge_log_event(p_topic, p_url);
        o_created_at := nudge_now_ms();
        INSERT INTO messages (room, author, text, created_at, event_id)
        VALUES (p_room, p_author, p_text, o_created_at, o_event_id)
        RETURNING id INTO o_id;
        UPDATE rooms SET version = o_event_id WHERE name = p_room;
        IF p_key IS NOT NULL THEN
            INSERT INTO idempotency (key, request, message_id, created_at)
            VALUES (p_key, p_request, o_id, o_created_at);
        END IF;
        outcome := 'stored';
        o_room := p_room;
        o_author := p_author;
        o_text := p_text;
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
"#];

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
    client
        .execute(
            "SELECT nudge_create_room('general', $1, $2)",
            &[&ROOMS_TOPIC, &ROOMS_URL],
        )
        .await
        .map_err(store_error)?;
    Ok(())
}

/// The largest event id ever committed (0 for a new log).
pub async fn head(client: &Client) -> StoreResult<i64> {
    let row = client
        .query_one("SELECT nudge_head()", &[])
        .await
        .map_err(store_error)?;
    Ok(row.get(0))
}
