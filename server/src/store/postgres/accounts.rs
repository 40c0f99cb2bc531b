//! Accounts on PostgreSQL: users, sessions, private rooms and their members, in the database
//! every node shares, so a session opened on one node is valid on all.
//!
//! Users and sessions are plain statements on a read connection: they log no event, so they
//! need neither the commit lock nor the writer. Private-room creation and membership changes
//! log an event on `rooms`, so they go through the writer task like any other logged write
//! (`nudge_member_change`, under the commit lock): their ids stay in commit order. Each such
//! change reaches the access view of every node through that node's follower, just before the
//! follower publishes its event; a call here answers only once this node's follower got that
//! far, so the caller's next request already sees the change.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio_postgres::Client;

use nudge::store::postgres::{store_error, Pool, PostgresStore as Core, Prepare, SESSIONS_CHANNEL};
use nudge::{StoreError, StoreResult};

use super::read::Reader;
use super::write::{MemberChange, MemberOutcome, WriteJob};
use super::WriteHandle;
use crate::access::AccessSnapshot;
use crate::domain::names::name_key;
use crate::domain::{RoomName, UserName};
use crate::store::accounts::{
    AccountError, AccountResult, Accounts, LiveSession, NewSession, StoredCredentials, TokenHash,
};

/// Longest wait for this node's follower to publish a change just committed. Past it the call
/// answers anyway: the change is committed, and the follower applies it when it can.
const FOLLOW_TIMEOUT: Duration = Duration::from_secs(2);

/// The private rooms with their members, from one snapshot, to fill the access view at start.
/// A change committed after it has a larger event id than the snapshot's version, and the
/// follower applies it; one already in it is skipped by that version.
pub async fn load_view(client: &mut Client) -> StoreResult<AccessSnapshot> {
    let tx = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(store_error)?;
    let version: i64 = tx
        .query_one("SELECT members_version FROM log_meta", &[])
        .await
        .map_err(store_error)?
        .get(0);
    let mut private: HashMap<String, HashSet<String>> = HashMap::new();
    for row in tx
        .query("SELECT name FROM rooms WHERE private", &[])
        .await
        .map_err(store_error)?
    {
        private.insert(row.get(0), HashSet::new());
    }
    for row in tx
        .query("SELECT room, user_name FROM members", &[])
        .await
        .map_err(store_error)?
    {
        if let Some(members) = private.get_mut(row.get::<_, &str>(0)) {
            members.insert(row.get(1));
        }
    }
    tx.commit().await.map_err(store_error)?;
    Ok(AccessSnapshot { private, version })
}

/// Fills the name keys of users registered before names had keys, oldest first (run under the
/// migration lock). Should two old names share a key (`Ann` and `ann`), the older keeps it; the
/// younger gets a key no name can have (it starts with a control character), so it stays in
/// the rooms it is in but can no longer sign in, being the same name as an older account.
pub async fn backfill_name_keys(client: &mut Client) -> StoreResult<()> {
    let tx = client.transaction().await.map_err(store_error)?;
    let names = tx
        .query(
            "SELECT name FROM users WHERE name_key IS NULL ORDER BY created_at, name",
            &[],
        )
        .await
        .map_err(store_error)?;
    for row in names {
        let name: String = row.get(0);
        let key = name_key(&name);
        let taken = tx
            .query_opt("SELECT 1 FROM users WHERE name_key = $1", &[&key])
            .await
            .map_err(store_error)?
            .is_some();
        let key = if taken { format!("\u{1}{name}") } else { key };
        tx.execute(
            "UPDATE users SET name_key = $1 WHERE name = $2",
            &[&key, &name],
        )
        .await
        .map_err(store_error)?;
    }
    tx.commit().await.map_err(store_error)
}

/// The accounts of a [`PostgresStore`](super::PostgresStore).
pub struct PostgresAccounts {
    writer: WriteHandle,
    pool: Arc<Pool<Reader>>,
    core: Arc<Core>,
}

impl PostgresAccounts {
    pub(super) fn new(writer: WriteHandle, pool: Arc<Pool<Reader>>, core: Arc<Core>) -> Self {
        Self { writer, pool, core }
    }

    /// Commits a membership change through the writer; true when something changed.
    async fn change(&self, change: MemberChange) -> AccountResult<bool> {
        let MemberOutcome { outcome, event_id } = self
            .writer
            .write(|reply| WriteJob::Member { change, reply })
            .await?;
        match outcome.as_str() {
            "changed" => {
                if let Some(id) = event_id {
                    self.until_published(id).await;
                }
                Ok(true)
            }
            "unchanged" => Ok(false),
            "room_exists" => Err(AccountError::RoomExists),
            "no_such_room" => Err(AccountError::NoSuchRoom),
            "room_is_public" => Err(AccountError::RoomIsPublic),
            "not_a_member" => Err(AccountError::NotAMember),
            "no_such_user" => Err(AccountError::NoSuchUser),
            other => {
                Err(StoreError::Database(format!("unknown membership outcome {other:?}")).into())
            }
        }
    }

    /// The name as registered of the account `name` is the key of; `name` itself when there is
    /// none, which then names nobody either (the membership function says so in its turn).
    async fn registered_name(&self, name: &UserName) -> AccountResult<String> {
        let row = self
            .pool
            .get()
            .await?
            .client()
            .query_opt("SELECT name FROM users WHERE name_key = $1", &[&name.key()])
            .await
            .map_err(store_error)?;
        Ok(row.map_or_else(|| name.as_str().to_owned(), |r| r.get(0)))
    }

    /// Waits (bounded) until this node's follower has applied and published event `id`.
    async fn until_published(&self, id: i64) {
        let reached = tokio::time::timeout(FOLLOW_TIMEOUT, self.core.published(id)).await;
        if reached.is_err() {
            tracing::warn!(id, "the follower has not published a membership change yet");
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[async_trait]
impl Accounts for PostgresAccounts {
    async fn register(
        &self,
        name: &UserName,
        password_hash: String,
        session: NewSession,
    ) -> AccountResult<()> {
        // One statement, so the user and the first session commit together; a taken name or
        // name key inserts nothing.
        let inserted = self
            .pool
            .get()
            .await?
            .client()
            .execute(
                "WITH u AS (INSERT INTO users (name, name_key, password_hash, created_at) \
                            VALUES ($1, $5, $2, nudge_now_ms()) \
                            ON CONFLICT DO NOTHING RETURNING name) \
                 INSERT INTO sessions (token_hash, user_name, created_at, expires_at) \
                 SELECT $3, name, nudge_now_ms(), $4 FROM u",
                &[
                    &name.as_str(),
                    &password_hash,
                    &&session.token_hash.0[..],
                    &session.expires_at_ms,
                    &name.key(),
                ],
            )
            .await
            .map_err(store_error)?;
        if inserted == 0 {
            return Err(AccountError::NameTaken);
        }
        Ok(())
    }

    async fn credentials(&self, name: &UserName) -> AccountResult<Option<StoredCredentials>> {
        let row = self
            .pool
            .get()
            .await?
            .client()
            .query_opt(
                "SELECT name, password_hash FROM users WHERE name_key = $1",
                &[&name.key()],
            )
            .await
            .map_err(store_error)?;
        Ok(row.map(|r| StoredCredentials {
            name: UserName::stored(r.get(0)),
            password_hash: r.get(1),
        }))
    }

    async fn start_session(&self, user: &UserName, session: NewSession) -> AccountResult<()> {
        let inserted = self
            .pool
            .get()
            .await?
            .client()
            .execute(
                "INSERT INTO sessions (token_hash, user_name, created_at, expires_at) \
                 SELECT $1, name, nudge_now_ms(), $3 FROM users WHERE name = $2",
                &[
                    &&session.token_hash.0[..],
                    &user.as_str(),
                    &session.expires_at_ms,
                ],
            )
            .await
            .map_err(store_error)?;
        if inserted == 0 {
            return Err(AccountError::NoSuchUser);
        }
        Ok(())
    }

    async fn live_session(&self, token_hash: TokenHash) -> AccountResult<Option<LiveSession>> {
        let row = self
            .pool
            .get()
            .await?
            .client()
            .query_opt(
                "SELECT user_name, expires_at FROM sessions \
                 WHERE token_hash = $1 AND expires_at > $2",
                &[&&token_hash.0[..], &now_ms()],
            )
            .await
            .map_err(store_error)?;
        Ok(row.map(|r| LiveSession {
            user: UserName::stored(r.get(0)),
            expires_at_ms: r.get(1),
        }))
    }

    async fn end_session(&self, token_hash: TokenHash) -> AccountResult<()> {
        // The NOTIFY commits with the DELETE: every node's follower hears it and ends the
        // session's streams there (see `follow`).
        self.pool
            .get()
            .await?
            .client()
            .execute(
                &format!(
                    "WITH gone AS (DELETE FROM sessions WHERE token_hash = $1 RETURNING token_hash) \
                     SELECT pg_notify('{SESSIONS_CHANNEL}', encode(token_hash, 'hex')) FROM gone"
                ),
                &[&&token_hash.0[..]],
            )
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn create_private_room(
        &self,
        room: &RoomName,
        creator: &UserName,
    ) -> AccountResult<bool> {
        self.change(MemberChange {
            kind: "private",
            room: room.as_str().to_owned(),
            by: creator.as_str().to_owned(),
            user: creator.as_str().to_owned(),
        })
        .await
    }

    async fn add_member(
        &self,
        room: &RoomName,
        by: &UserName,
        user: &UserName,
    ) -> AccountResult<()> {
        let user = self.registered_name(user).await?;
        self.change(MemberChange {
            kind: "add",
            room: room.as_str().to_owned(),
            by: by.as_str().to_owned(),
            user,
        })
        .await
        .map(drop)
    }

    async fn remove_member(
        &self,
        room: &RoomName,
        by: &UserName,
        user: &UserName,
    ) -> AccountResult<()> {
        let user = self.registered_name(user).await?;
        self.change(MemberChange {
            kind: "remove",
            room: room.as_str().to_owned(),
            by: by.as_str().to_owned(),
            user,
        })
        .await
        .map(drop)
    }
}
