//! Watercooler's PostgreSQL tables and functions, migrated by nudge after its own
//! ([`super::super::MIGRATIONS`]). The first step is the layout the chat had when it shared
//! one list of steps with the log, so that such a database is adopted as it is.
//!
//! Writes live in SQL functions (`nudge_append`, `nudge_create_room`, `nudge_member_change`)
//! so that a batch costs few statements: consecutive appends travel as one call with arrays,
//! and the writer pipelines the calls of a batch into one transaction without waiting for each
//! answer. Each logs through nudge's `nudge_log_event`, which takes the commit lock, so the
//! ordering rule holds whoever calls them. `COMMIT_LOCK` stands for nudge's lock's number.

/// Each entry moves Watercooler's tables from version `index` to `index + 1`.
pub const MIGRATIONS: &[&str] = &[
    r#"
    -- A room's version (its newest event) is read from its newest message rather than kept
    -- here: updating one hot row per message would cost every write more than reads gain.
    CREATE TABLE rooms (
        name          text PRIMARY KEY,
        created_at    bigint NOT NULL,
        created_event bigint NOT NULL           -- id of the event that announced it
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

    -- A name is one account whatever its case or width: its key (domain::names) is unique.
    -- Keys of earlier users are filled in by accounts::backfill_name_keys at every start.
    ALTER TABLE users ADD COLUMN name_key text UNIQUE;
"#,
    r#"
    -- Membership changes travel as the note of the event that announces them (nudge's
    -- Audience::committed reads it on every node), no longer as rows beside the log.
    DROP TABLE access_changes;
    -- Creates a private room ('private', p_by its creator) or has member p_by add or remove
    -- p_user; every refusal is decided before anything is written. outcome is 'changed' (then
    -- o_event is the logged event), 'unchanged', or the refusal: 'room_exists', 'no_such_room',
    -- 'room_is_public', 'not_a_member', 'no_such_user'.
    CREATE OR REPLACE FUNCTION nudge_member_change(p_kind text, p_room text, p_by text, p_user text,
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
        -- The note every node's follower hands to the access view (crate::access).
        UPDATE events SET note = p_kind || E'\t' || p_room || E'\t'
                                 || CASE WHEN p_kind = 'private' THEN p_by ELSE p_user END
        WHERE id = o_event;
        UPDATE log_meta SET members_version = o_event;
        outcome := 'changed';
        RETURN NEXT;
    END $$;
"#,
    r#"
    -- Messages log through nudge_log_event like every other write: an insert of its own into
    -- the log sent no NOTIFY, and other nodes heard of a message only at their follower's
    -- periodic read.
    -- Appends a batch of messages (element i of each array is message i), returning one row
    -- per message in order. outcome is 'stored', 'replayed' or 'conflict' (then the other
    -- columns are null). One call per batch keeps the per-message cost to the inserts.
    CREATE OR REPLACE FUNCTION nudge_append(
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
            -- Through nudge's function: the commit lock (already held: cheap), and the NOTIFY
            -- that wakes every node's follower at the commit.
            o_event_id := nudge_log_event(p_topics[i], p_urls[i]);
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
"#,
];
