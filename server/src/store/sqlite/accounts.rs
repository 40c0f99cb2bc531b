//! Accounts on SQLite: users, sessions, private rooms and their members, in the same file as
//! the log. Every change goes through nudge's writer like any other write, so a membership
//! change is logged on `rooms` with a note, committed, and applied to the access view in commit
//! order with the events around it ([`crate::access::RoomAudience`]).

use std::collections::{HashMap, HashSet};

use std::sync::Arc;

use async_trait::async_trait;
use nudge::store::sqlite::{now_ms, SqliteStore as Core, WriteTx};
use nudge::{StoreError, StoreResult};
use rusqlite::{params, Connection, OptionalExtension};

use super::write::create_room;
use crate::access::{AccessChange, AccessSnapshot};
use crate::domain::names::name_key;
use crate::domain::{RoomName, UserName, ROOMS_TOPIC, ROOMS_URL};
use crate::store::accounts::{
    AccountError, AccountResult, Accounts, LiveSession, NewSession, StoredCredentials, TokenHash,
};

/// A change of accounts, applied by nudge's writer.
#[derive(Debug)]
pub enum AccountOp {
    /// A new user, signed in at once.
    Register {
        /// The user's name.
        name: String,
        /// Its key: unique among users.
        name_key: String,
        /// The argon2 hash of the password.
        password_hash: String,
        /// The first session.
        session: NewSession,
    },
    /// A sign-in.
    StartSession {
        /// Whose session.
        user: String,
        /// The session.
        session: NewSession,
    },
    /// A sign-out.
    EndSession {
        /// The session's token hash.
        token_hash: TokenHash,
    },
    /// A new private room.
    CreatePrivateRoom {
        /// The room.
        room: RoomName,
        /// Its first member.
        creator: String,
    },
    /// `by` adds the user of `user_key` to `room`.
    AddMember {
        /// The room.
        room: String,
        /// The acting member.
        by: String,
        /// The key of the new member's name.
        user_key: String,
    },
    /// `by` removes the user of `user_key` from `room`.
    RemoveMember {
        /// The room.
        room: String,
        /// The acting member.
        by: String,
        /// The key of the name of the member to remove.
        user_key: String,
    },
}

/// What an applied change did.
#[derive(Debug, Default)]
pub struct Applied {
    /// Whether something new was created (a room).
    pub created: bool,
}

/// Applies `op` on the writer's connection; a membership change is logged with its note.
pub fn apply(tx: &mut WriteTx<'_>, op: &AccountOp) -> AccountResult<Applied> {
    match op {
        AccountOp::Register {
            name,
            name_key,
            password_hash,
            session,
        } => {
            let conn = tx.conn();
            if user_by_key(conn, name_key)?.is_some() {
                return Err(AccountError::NameTaken);
            }
            conn.prepare_cached(
                "INSERT INTO users (name, name_key, password_hash, created_at) \
                 VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut s| s.execute(params![name, name_key, password_hash, now_ms()]))
            .map_err(StoreError::from)?;
            insert_session(conn, name, session)?;
            Ok(Applied::default())
        }
        AccountOp::StartSession { user, session } => {
            let conn = tx.conn();
            if !user_exists(conn, user)? {
                return Err(AccountError::NoSuchUser);
            }
            insert_session(conn, user, session)?;
            Ok(Applied::default())
        }
        AccountOp::EndSession { token_hash } => {
            tx.conn()
                .execute(
                    "DELETE FROM sessions WHERE token_hash = ?1",
                    [&token_hash.0[..]],
                )
                .map_err(StoreError::from)?;
            Ok(Applied::default())
        }
        AccountOp::CreatePrivateRoom { room, creator } => {
            match room_privacy(tx.conn(), room.as_str())? {
                Some(true) if is_member(tx.conn(), room.as_str(), creator)? => {
                    return Ok(Applied::default())
                }
                Some(_) => return Err(AccountError::RoomExists),
                None => {}
            }
            // Refused as PostgreSQL refuses it, not left to the foreign key (a store error).
            if !user_exists(tx.conn(), creator)? {
                return Err(AccountError::NoSuchUser);
            }
            let change = AccessChange::MadePrivate {
                room: room.as_str().to_owned(),
                creator: creator.clone(),
                event_id: 0,
            };
            create_room(tx, room, Some(&change.note()))?;
            let conn = tx.conn();
            conn.execute(
                "UPDATE rooms SET private = 1 WHERE name = ?1",
                [room.as_str()],
            )
            .map_err(StoreError::from)?;
            insert_member(conn, room.as_str(), creator)?;
            Ok(Applied { created: true })
        }
        AccountOp::AddMember { room, by, user_key } => {
            let conn = tx.conn();
            check_member_change(conn, room, by)?;
            let Some(user) = user_by_key(conn, user_key)? else {
                return Err(AccountError::NoSuchUser);
            };
            if is_member(conn, room, &user)? {
                return Ok(Applied::default());
            }
            insert_member(conn, room, &user)?;
            let change = AccessChange::Granted {
                room: room.clone(),
                user,
                event_id: 0,
            };
            log_membership(tx, &change)?;
            Ok(Applied { created: true })
        }
        AccountOp::RemoveMember { room, by, user_key } => {
            let conn = tx.conn();
            check_member_change(conn, room, by)?;
            let Some(user) = user_by_key(conn, user_key)? else {
                return Ok(Applied::default());
            };
            if !is_member(conn, room, &user)? {
                return Ok(Applied::default());
            }
            conn.execute(
                "DELETE FROM members WHERE room = ?1 AND user = ?2",
                params![room, user],
            )
            .map_err(StoreError::from)?;
            let change = AccessChange::Revoked {
                room: room.clone(),
                user,
                event_id: 0,
            };
            log_membership(tx, &change)?;
            Ok(Applied { created: false })
        }
    }
}

/// The private rooms and their members, to fill the access view at start.
pub fn load_view(conn: &Connection) -> StoreResult<AccessSnapshot> {
    let mut private: HashMap<String, HashSet<String>> = HashMap::new();
    let mut rooms = conn.prepare("SELECT name FROM rooms WHERE private = 1")?;
    for name in rooms.query_map([], |r| r.get::<_, String>(0))? {
        private.insert(name?, Default::default());
    }
    let mut members = conn.prepare("SELECT room, user FROM members")?;
    let rows = members.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    for row in rows {
        let (room, user) = row?;
        if let Some(set) = private.get_mut(&room) {
            set.insert(user);
        }
    }
    let version = conn.query_row(
        "SELECT value FROM log_meta WHERE key = 'members_version'",
        [],
        |r| r.get(0),
    )?;
    Ok(AccessSnapshot { private, version })
}

/// Fills the name keys of users registered before names had keys, oldest first. Should two
/// old names share a key (`Ann` and `ann`), the older keeps it; the younger gets a key no name
/// can have (it starts with a control character), so it stays in the rooms it is in but can no
/// longer sign in, being the same name as an older account.
pub fn backfill_name_keys(tx: &Connection) -> StoreResult<()> {
    let names: Vec<String> = tx
        .prepare("SELECT name FROM users WHERE name_key IS NULL ORDER BY created_at, name")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for name in names {
        let key = name_key(&name);
        let key = match user_by_key(tx, &key)? {
            Some(_) => format!("\u{1}{name}"),
            None => key,
        };
        tx.execute(
            "UPDATE users SET name_key = ?1 WHERE name = ?2",
            params![key, name],
        )?;
    }
    Ok(())
}

/// The name as registered of the user whose name has `key`.
fn user_by_key(conn: &Connection, key: &str) -> StoreResult<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT name FROM users WHERE name_key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()?)
}

fn user_exists(conn: &Connection, name: &str) -> StoreResult<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM users WHERE name = ?1")?
        .query_row([name], |_| Ok(()))
        .optional()?
        .is_some())
}

/// `Some(private)` for an existing room, `None` for none.
fn room_privacy(conn: &Connection, room: &str) -> StoreResult<Option<bool>> {
    Ok(conn
        .prepare_cached("SELECT private FROM rooms WHERE name = ?1")?
        .query_row([room], |r| r.get::<_, bool>(0))
        .optional()?)
}

fn is_member(conn: &Connection, room: &str, user: &str) -> StoreResult<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM members WHERE room = ?1 AND user = ?2")?
        .query_row([room, user], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Only a member of an existing private room changes its members.
fn check_member_change(conn: &Connection, room: &str, by: &str) -> AccountResult<()> {
    match room_privacy(conn, room)? {
        None => Err(AccountError::NoSuchRoom),
        Some(false) => Err(AccountError::RoomIsPublic),
        Some(true) if !is_member(conn, room, by)? => Err(AccountError::NotAMember),
        Some(true) => Ok(()),
    }
}

fn insert_member(conn: &Connection, room: &str, user: &str) -> StoreResult<()> {
    conn.prepare_cached("INSERT INTO members (room, user, added_at) VALUES (?1, ?2, ?3)")?
        .execute(params![room, user, now_ms()])?;
    Ok(())
}

fn insert_session(conn: &Connection, user: &str, session: &NewSession) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO sessions (token_hash, user, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![
        &session.token_hash.0[..],
        user,
        now_ms(),
        session.expires_at_ms
    ])?;
    Ok(())
}

/// Logs a membership change on `rooms` (the lists of the users concerned changed), with its
/// note, and makes it the room list's version.
fn log_membership(tx: &mut WriteTx<'_>, change: &AccessChange) -> StoreResult<i64> {
    let id = tx.changed_with_note(ROOMS_TOPIC, ROOMS_URL, &change.note())?;
    tx.conn().execute(
        "UPDATE log_meta SET value = ?1 WHERE key = 'members_version'",
        [id],
    )?;
    Ok(id)
}

/// The accounts of a [`SqliteStore`](super::SqliteStore).
pub struct SqliteAccounts {
    core: Arc<Core>,
}

impl SqliteAccounts {
    pub(super) fn new(core: Arc<Core>) -> Self {
        Self { core }
    }

    async fn change(&self, op: AccountOp) -> AccountResult<Applied> {
        // A refusal is an `Err`: its savepoint is rolled back, whatever it wrote.
        self.core.write(move |tx| apply(tx, &op)).await
    }
}

#[async_trait]
impl Accounts for SqliteAccounts {
    async fn register(
        &self,
        name: &UserName,
        password_hash: String,
        session: NewSession,
    ) -> AccountResult<()> {
        self.change(AccountOp::Register {
            name: name.as_str().to_owned(),
            name_key: name.key(),
            password_hash,
            session,
        })
        .await
        .map(drop)
    }

    async fn credentials(&self, name: &UserName) -> AccountResult<Option<StoredCredentials>> {
        let key = name.key();
        let row: Option<(String, String)> = self
            .core
            .read(move |tx| {
                Ok(tx
                    .prepare_cached("SELECT name, password_hash FROM users WHERE name_key = ?1")?
                    .query_row([key], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?)
            })
            .await?;
        Ok(row.map(|(name, password_hash)| StoredCredentials {
            name: UserName::stored(name),
            password_hash,
        }))
    }

    async fn start_session(&self, user: &UserName, session: NewSession) -> AccountResult<()> {
        self.change(AccountOp::StartSession {
            user: user.as_str().to_owned(),
            session,
        })
        .await
        .map(drop)
    }

    async fn live_session(&self, token_hash: TokenHash) -> AccountResult<Option<LiveSession>> {
        let row: Option<(String, i64)> = self
            .core
            .read(move |tx| {
                Ok(tx
                    .prepare_cached(
                        "SELECT user, expires_at FROM sessions \
                         WHERE token_hash = ?1 AND expires_at > ?2",
                    )?
                    .query_row(params![&token_hash.0[..], now_ms()], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })
                    .optional()?)
            })
            .await?;
        Ok(row.map(|(name, expires_at_ms)| LiveSession {
            user: UserName::stored(name),
            expires_at_ms,
        }))
    }

    async fn end_session(&self, token_hash: TokenHash) -> AccountResult<()> {
        self.change(AccountOp::EndSession { token_hash })
            .await
            .map(drop)
    }

    async fn create_private_room(
        &self,
        room: &RoomName,
        creator: &UserName,
    ) -> AccountResult<bool> {
        self.change(AccountOp::CreatePrivateRoom {
            room: room.clone(),
            creator: creator.as_str().to_owned(),
        })
        .await
        .map(|applied| applied.created)
    }

    async fn add_member(
        &self,
        room: &RoomName,
        by: &UserName,
        user: &UserName,
    ) -> AccountResult<()> {
        self.change(AccountOp::AddMember {
            room: room.as_str().to_owned(),
            by: by.as_str().to_owned(),
            user_key: user.key(),
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
        self.change(AccountOp::RemoveMember {
            room: room.as_str().to_owned(),
            by: by.as_str().to_owned(),
            user_key: user.key(),
        })
        .await
        .map(drop)
    }
}
