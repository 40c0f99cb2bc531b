//! Users, sessions and private rooms, behind a trait of their own so that handlers never know
//! the backend (SQLite and PostgreSQL both implement it).
//!
//! Who may read what is not asked of this trait on every delivery: each membership change is
//! logged with a note that keeps the [`AccessView`](crate::access::AccessView) in step, in
//! commit order, on every node.

use async_trait::async_trait;

use crate::domain::{RoomName, UserName};
use nudge::StoreError;

/// Failures and refusals of an accounts backend; [`crate::error`] maps them to HTTP.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// Registration with a name someone already has.
    #[error("the name is taken")]
    NameTaken,
    /// The user named does not exist.
    #[error("no such user")]
    NoSuchUser,
    /// The room named does not exist.
    #[error("no such room")]
    NoSuchRoom,
    /// A private room was asked for where a room already exists.
    #[error("the room already exists")]
    RoomExists,
    /// Members were asked of a public room.
    #[error("the room is public")]
    RoomIsPublic,
    /// The acting user is not a member of the private room.
    #[error("not a member")]
    NotAMember,
    /// The store itself failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The shorthand every accounts method returns.
pub type AccountResult<T> = Result<T, AccountError>;

/// The SHA-256 of a session token: all the server keeps of it, so that a leaked database does
/// not hand out sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash(pub [u8; 32]);

/// A session to remember.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// The hash of its token.
    pub token_hash: TokenHash,
    /// When it stops working, in milliseconds since the Unix epoch.
    pub expires_at_ms: i64,
}

/// An unexpired session, as an event stream needs it: whose, and until when.
#[derive(Debug, Clone)]
pub struct LiveSession {
    /// The signed-in user.
    pub user: UserName,
    /// When it stops working, in milliseconds since the Unix epoch.
    pub expires_at_ms: i64,
}

/// A registered user, as sign-in needs it.
#[derive(Debug, Clone)]
pub struct StoredCredentials {
    /// The name as it was registered.
    pub name: UserName,
    /// Its argon2 PHC string.
    pub password_hash: String,
}

/// Users, sessions and the members of private rooms. Users are found by their name's
/// [key](UserName::key), so `Ann`, `ann` and `ＡＮＮ` name one account; what is stored and
/// answered is the name as registered.
#[async_trait]
pub trait Accounts: Send + Sync + 'static {
    /// Registers `name` with an argon2 hash of its password and signs it in with `session`,
    /// in one transaction. [`AccountError::NameTaken`] when a name with the same key exists.
    async fn register(
        &self,
        name: &UserName,
        password_hash: String,
        session: NewSession,
    ) -> AccountResult<()>;

    /// The registered name and password hash of the account `name` is the key of, or `None`
    /// for an unknown user.
    async fn credentials(&self, name: &UserName) -> AccountResult<Option<StoredCredentials>>;

    /// Remembers a session of `user`, a name as registered.
    async fn start_session(&self, user: &UserName, session: NewSession) -> AccountResult<()>;

    /// The user and expiry of an unexpired session, or `None` (a stream ends at the expiry).
    async fn live_session(&self, token_hash: TokenHash) -> AccountResult<Option<LiveSession>>;

    /// The user of an unexpired session, or `None`.
    async fn session_user(&self, token_hash: TokenHash) -> AccountResult<Option<UserName>> {
        Ok(self
            .live_session(token_hash)
            .await?
            .map(|session| session.user))
    }

    /// Forgets a session (nothing happens for an unknown one). On a backend shared by several
    /// nodes, every node is told, so that each ends the session's event streams.
    async fn end_session(&self, token_hash: TokenHash) -> AccountResult<()>;

    /// Creates `room` as private with `creator` as its first member and logs the change on
    /// `rooms`. Returns false when it already was a private room `creator` belongs to;
    /// [`AccountError::RoomExists`] for any other existing room.
    async fn create_private_room(&self, room: &RoomName, creator: &UserName)
        -> AccountResult<bool>;

    /// `by`, a member, adds `user` (the account of that key) to the private `room`; logs the
    /// change on `rooms` when there was one.
    async fn add_member(
        &self,
        room: &RoomName,
        by: &UserName,
        user: &UserName,
    ) -> AccountResult<()>;

    /// `by`, a member, removes `user` (the account of that key, possibly themselves) from the
    /// private `room`; logs the change on `rooms` when there was one.
    async fn remove_member(
        &self,
        room: &RoomName,
        by: &UserName,
        user: &UserName,
    ) -> AccountResult<()>;
}
