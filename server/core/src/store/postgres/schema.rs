//! The log's PostgreSQL schema, the app's migrations beside it, and the commit lock.
//!
//! Each component (nudge itself, then each app's [`Migrations`]) has its own version in
//! `nudge_migrations`; its steps run in order, each in a transaction, under a session advisory
//! lock so that nodes that start together migrate once, one after the other. In every step,
//! `COMMIT_LOCK` stands for [`COMMIT_LOCK`]'s number.

use tokio_postgres::Client;

use super::conn::store_error;
use crate::store::{Migrations, StoreResult};

/// The transaction-level advisory lock every transaction that logs holds from its first
/// logged change to its commit (`nudge_log_event` takes it). Event ids come from a sequence,
/// but only while this lock is held, so a transaction that got smaller ids has committed (and
/// is visible) before the next one gets any id: ids increase in commit order. PostgreSQL makes
/// a commit visible before it releases locks, so a reader that sees id N also sees every id
/// below N that will ever exist.
pub const COMMIT_LOCK: i64 = 0x6e75_6467_6501;

/// The session-level advisory lock held while migrating.
const MIGRATION_LOCK: i64 = 0x6e75_6467_6502;

/// The component name of nudge's own tables.
const CORE: &str = "nudge";

/// nudge's own steps.
const STEPS: &[&str] = &[
    r#"
    -- Only ever advanced while COMMIT_LOCK is held; a rolled-back transaction leaves a gap,
    -- which readers never mind (they ask for ids greater than the last one they saw).
    CREATE SEQUENCE event_ids;
    CREATE TABLE events (
        id          bigint PRIMARY KEY,
        topic       text NOT NULL,
        url         text NOT NULL,
        created_at  bigint NOT NULL
    );
    -- A resuming stream reads only its topics' events: exact topics as one `= ANY` search,
    -- each prefix as one range. In byte order ("C") whatever the database's collation, so that
    -- a prefix is one range; the replay's conditions name the same collation.
    CREATE INDEX events_by_topic ON events (topic COLLATE "C", id);
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

    CREATE FUNCTION nudge_prune(p_max_events bigint, p_max_age_ms bigint) RETURNS bigint
    LANGUAGE plpgsql AS $$ BEGIN RETURN 0; END $$;
"#,
    r#"
    -- A note for the app's Audience on every node (never sent to clients).
    ALTER TABLE events ADD COLUMN note text;
    -- Logs a change under the commit lock, and wakes every node's follower at the commit
    -- (notifications are delivered on commit, and one per transaction is enough).
    DROP FUNCTION nudge_log_event(text, text);
    CREATE FUNCTION nudge_log_event(p_topic text, p_url text, p_note text DEFAULT NULL)
    RETURNS bigint LANGUAGE plpgsql AS $$
    DECLARE v_id bigint;
    BEGIN
        PERFORM pg_advisory_xact_lock(COMMIT_LOCK);
        INSERT INTO events (id, topic, url, created_at, note)
        VALUES (nextval('event_ids'), p_topic, p_url, nudge_now_ms(), p_note)
        RETURNING id INTO v_id;
        PERFORM pg_notify('nudge_events', '');
        RETURN v_id;
    END $$;
    -- The first answer to each Idempotency-Key (see crate::idempotency).
    CREATE TABLE nudge_idempotency (
        key         text PRIMARY KEY,
        request     bytea NOT NULL,
        status      integer NOT NULL,
        headers     text NOT NULL,
        body        bytea NOT NULL,
        created_at  bigint NOT NULL
    );
    CREATE INDEX nudge_idempotency_by_age ON nudge_idempotency (created_at);
    CREATE OR REPLACE FUNCTION nudge_prune(p_max_events bigint, p_max_age_ms bigint)
    RETURNS bigint LANGUAGE plpgsql AS $$
    DECLARE
        v_cutoff bigint;
        v_by_age bigint;
        v_through bigint;
        v_removed bigint;
    BEGIN
        PERFORM pg_advisory_xact_lock(COMMIT_LOCK);
        v_cutoff := nudge_now_ms() - p_max_age_ms;
        -- Stored answers live as long as the log: a retry older than that is not a retry.
        DELETE FROM nudge_idempotency WHERE created_at < v_cutoff;
        SELECT COALESCE(max(id), 0) INTO v_by_age FROM events WHERE created_at < v_cutoff;
        v_through := GREATEST(nudge_head() - p_max_events, v_by_age);
        IF v_through <= 0 THEN
            RETURN 0;
        END IF;
        DELETE FROM events WHERE id <= v_through;
        GET DIAGNOSTICS v_removed = ROW_COUNT;
        UPDATE log_meta SET pruned_through = GREATEST(pruned_through, v_through);
        RETURN v_removed;
    END $$;
"#,
    r#"
    -- Web Push subscriptions (see crate::push): who made each, and the topics it wants.
    CREATE TABLE nudge_push_subscriptions (
        endpoint    text PRIMARY KEY,
        p256dh      bytea NOT NULL,
        auth        bytea NOT NULL,
        principal   text,
        topics      text NOT NULL,
        created_at  bigint NOT NULL
    );
    CREATE INDEX nudge_push_by_principal ON nudge_push_subscriptions (principal);
"#,
    r#"
    -- One NOTIFY per transaction, however many changes it logs (a batch of a thousand messages
    -- paid for a thousand): a transaction-local setting remembers that it was sent.
    CREATE OR REPLACE FUNCTION nudge_log_event(p_topic text, p_url text, p_note text DEFAULT NULL)
    RETURNS bigint LANGUAGE plpgsql AS $$
    DECLARE v_id bigint;
    BEGIN
        PERFORM pg_advisory_xact_lock(COMMIT_LOCK);
        INSERT INTO events (id, topic, url, created_at, note)
        VALUES (nextval('event_ids'), p_topic, p_url, nudge_now_ms(), p_note)
        RETURNING id INTO v_id;
        IF coalesce(current_setting('nudge.notified', true), '') = '' THEN
            PERFORM pg_notify('nudge_events', '');
            PERFORM set_config('nudge.notified', 'yes', true);
        END IF;
        RETURN v_id;
    END $$;
"#,
];

/// Brings nudge's tables, then each app's, up to date under `MIGRATION_LOCK`.
pub async fn migrate(client: &mut Client, apps: &[Migrations]) -> StoreResult<()> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(store_error)?;
    let migrated = migrate_locked(client, apps).await;
    // Unlocking can only fail with the connection, which releases the lock anyway.
    let _ = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await;
    migrated
}

async fn migrate_locked(client: &mut Client, apps: &[Migrations]) -> StoreResult<()> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS nudge_migrations (
                component text PRIMARY KEY,
                version   integer NOT NULL
            )",
        )
        .await
        .map_err(store_error)?;
    adopt_single_schema(client, apps).await?;
    run(client, CORE, STEPS).await?;
    for app in apps {
        run(client, app.component, app.postgres).await?;
    }
    Ok(())
}

/// A database made before the log and the app had schemas of their own (one list of steps in
/// `nudge_schema`, which reached 4) holds nudge's first step and the app's first step: it is
/// recorded so, and nothing is run again.
async fn adopt_single_schema(client: &mut Client, apps: &[Migrations]) -> StoreResult<()> {
    let single: bool = client
        .query_one("SELECT to_regclass('nudge_schema') IS NOT NULL", &[])
        .await
        .map_err(store_error)?
        .get(0);
    if !single || version(client, CORE).await? != 0 {
        return Ok(());
    }
    let reached: Option<i32> = client
        .query_one("SELECT max(version) FROM nudge_schema", &[])
        .await
        .map_err(store_error)?
        .get(0);
    if reached != Some(4) {
        return Ok(());
    }
    let tx = client.transaction().await.map_err(store_error)?;
    for component in std::iter::once(CORE).chain(apps.iter().map(|a| a.component)) {
        tx.execute(
            "INSERT INTO nudge_migrations (component, version) VALUES ($1, 1)",
            &[&component],
        )
        .await
        .map_err(store_error)?;
    }
    tx.batch_execute("DROP TABLE nudge_schema")
        .await
        .map_err(store_error)?;
    tx.commit().await.map_err(store_error)?;
    tracing::info!("adopted a database from before the split of the log and the app's schema");
    Ok(())
}

async fn version(client: &Client, component: &str) -> StoreResult<usize> {
    let version: Option<i32> = client
        .query_opt(
            "SELECT version FROM nudge_migrations WHERE component = $1",
            &[&component],
        )
        .await
        .map_err(store_error)?
        .map(|row| row.get(0));
    Ok(version.unwrap_or(0).max(0) as usize)
}

async fn run(client: &mut Client, component: &str, steps: &[&str]) -> StoreResult<()> {
    let current = version(client, component).await?;
    for (version, sql) in steps.iter().enumerate().skip(current) {
        let tx = client.transaction().await.map_err(store_error)?;
        tx.batch_execute(&sql.replace("COMMIT_LOCK", &COMMIT_LOCK.to_string()))
            .await
            .map_err(store_error)?;
        tx.execute(
            "INSERT INTO nudge_migrations (component, version) VALUES ($1, $2)
             ON CONFLICT (component) DO UPDATE SET version = excluded.version",
            &[&component, &(version as i32 + 1)],
        )
        .await
        .map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        tracing::info!(
            component,
            version = version + 1,
            "migrated the PostgreSQL schema"
        );
    }
    Ok(())
}
