//! Who may read which room, held in memory so that every delivery can ask without a query:
//! Watercooler's [`nudge::Audience`].
//!
//! Rooms are public unless marked private; a private room is readable by its members only. The
//! store fills this view when it opens; a membership change is logged with a note
//! ([`AccessChange::note`]) on the event that announces it, and every node applies it when
//! nudge shows it that committed event ([`RoomAudience::committed`]), in commit order and
//! before that event is published: so an event committed after a revocation never reaches the
//! revoked member, and the answer to the revoking request comes after the view already says
//! so. The event stream (replay and live) and the HTTP reads all ask this one view.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock, RwLock, RwLockReadGuard};

use async_trait::async_trait;
use nudge::{
    ApiError, Audience, Credentials, LoggedEvent, Readers, Revocation, SessionKey, Viewer,
};

use crate::auth::session::{SessionToken, COOKIE_NAME};
use crate::domain::room_of_topic;
use crate::store::accounts::{Accounts, TokenHash};

/// The private rooms and their members, as the store has them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessSnapshot {
    /// Each private room with the names of its members.
    pub private: HashMap<String, HashSet<String>>,
    /// The id of the newest membership event (the room list's version counts it).
    pub version: i64,
}

/// One committed change of who may read what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessChange {
    /// A room was created private, with its creator as first member.
    MadePrivate {
        /// The room.
        room: String,
        /// Its first member.
        creator: String,
        /// The event that announced it.
        event_id: i64,
    },
    /// A user became a member.
    Granted {
        /// The room.
        room: String,
        /// The new member.
        user: String,
        /// The event that announced it.
        event_id: i64,
    },
    /// A user stopped being a member.
    Revoked {
        /// The room.
        room: String,
        /// The former member.
        user: String,
        /// The event that announced it.
        event_id: i64,
    },
}

impl AccessChange {
    /// The note logged with the change's event, which every node reads back with
    /// [`AccessChange::from_note`]: `kind room user`, tab-separated (names hold no tabs).
    pub fn note(&self) -> String {
        let (kind, room, user) = match self {
            Self::MadePrivate { room, creator, .. } => ("private", room, creator),
            Self::Granted { room, user, .. } => ("add", room, user),
            Self::Revoked { room, user, .. } => ("remove", room, user),
        };
        format!("{kind}\t{room}\t{user}")
    }

    /// The change a logged note describes, for the event `event_id`.
    pub fn from_note(note: &str, event_id: i64) -> Option<Self> {
        let mut parts = note.splitn(3, '\t');
        let (kind, room, user) = (parts.next()?, parts.next()?, parts.next()?);
        let (room, user) = (room.to_owned(), user.to_owned());
        Some(match kind {
            "private" => Self::MadePrivate {
                room,
                creator: user,
                event_id,
            },
            "add" => Self::Granted {
                room,
                user,
                event_id,
            },
            "remove" => Self::Revoked {
                room,
                user,
                event_id,
            },
            _ => return None,
        })
    }
}

/// A cheap, cloneable handle on the view.
#[derive(Clone, Default)]
pub struct AccessView {
    state: Arc<RwLock<AccessSnapshot>>,
}

impl AccessView {
    fn read(&self) -> RwLockReadGuard<'_, AccessSnapshot> {
        // Every write is one map operation: a poisoned lock still holds a consistent view.
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Replaces the whole view (when the store opens).
    pub fn replace(&self, snapshot: AccessSnapshot) {
        *self.state.write().unwrap_or_else(|p| p.into_inner()) = snapshot;
    }

    /// Applies one committed change, unless the view already holds it (a change at or below
    /// the view's version: loaded from a snapshot that had it).
    pub fn apply(&self, change: &AccessChange) {
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        let (AccessChange::MadePrivate { event_id, .. }
        | AccessChange::Granted { event_id, .. }
        | AccessChange::Revoked { event_id, .. }) = change;
        if *event_id <= state.version {
            return;
        }
        match change {
            AccessChange::MadePrivate {
                room,
                creator,
                event_id,
            } => {
                state
                    .private
                    .insert(room.clone(), HashSet::from([creator.clone()]));
                state.version = state.version.max(*event_id);
            }
            AccessChange::Granted {
                room,
                user,
                event_id,
            } => {
                if let Some(members) = state.private.get_mut(room) {
                    members.insert(user.clone());
                }
                state.version = state.version.max(*event_id);
            }
            AccessChange::Revoked {
                room,
                user,
                event_id,
            } => {
                if let Some(members) = state.private.get_mut(room) {
                    members.remove(user);
                }
                state.version = state.version.max(*event_id);
            }
        }
    }

    /// Whether `room` is private.
    pub fn is_private(&self, room: &str) -> bool {
        self.read().private.contains_key(room)
    }

    /// Whether `user` (`None`: signed out) may read `room`.
    pub fn may_read_room(&self, room: &str, user: Option<&str>) -> bool {
        allowed(self.read().private.get(room), user)
    }

    /// Whether `user` may receive events on `topic`; topics outside a room are public.
    pub fn may_read_topic(&self, topic: &str, user: Option<&str>) -> bool {
        room_of_topic(topic).is_none_or(|room| self.may_read_room(room, user))
    }

    /// Runs `f` with the members of the private room `topic` belongs to, or `None` when anyone
    /// may read it: one lookup per event, however many subscribers it is checked against.
    pub fn with_members<R>(&self, topic: &str, f: impl FnOnce(Option<&HashSet<String>>) -> R) -> R {
        let state = self.read();
        f(room_of_topic(topic).and_then(|room| state.private.get(room)))
    }

    /// The id of the newest membership event.
    pub fn version(&self) -> i64 {
        self.read().version
    }
}

/// Whether `user` passes a room whose members are `members` (`None`: a public room).
pub fn allowed(members: Option<&HashSet<String>>, user: Option<&str>) -> bool {
    match members {
        None => true,
        Some(members) => user.is_some_and(|user| members.contains(user)),
    }
}

/// Watercooler's answer to nudge's questions: who opens a stream (the session cookie), who may
/// read a room's topic (its members, when it is private), and what a logged membership change
/// does (the view changes; a revocation ends the room's topic on the member's streams).
pub struct RoomAudience {
    view: AccessView,
    accounts: OnceLock<Arc<dyn Accounts>>,
}

impl RoomAudience {
    /// An audience over `view`; sessions are looked up once [`RoomAudience::set_accounts`] is
    /// called (until then every stream is anonymous).
    pub fn new(view: AccessView) -> Self {
        Self {
            view,
            accounts: OnceLock::new(),
        }
    }

    /// Where sessions are looked up.
    pub fn set_accounts(&self, accounts: Arc<dyn Accounts>) {
        let _ = self.accounts.set(accounts);
    }
}

#[async_trait]
impl Audience for RoomAudience {
    async fn identify(&self, credentials: &Credentials) -> Result<Viewer, ApiError> {
        let (Some(accounts), Some(token)) = (
            self.accounts.get(),
            credentials
                .cookie(COOKIE_NAME)
                .and_then(SessionToken::from_cookie_value),
        ) else {
            return Ok(Viewer::default());
        };
        let token_hash = token.hash();
        let Some(live) = accounts.live_session(token_hash).await? else {
            return Ok(Viewer::default());
        };
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let left_ms = u64::try_from(i128::from(live.expires_at_ms) - now_ms as i128).unwrap_or(0);
        Ok(Viewer {
            principal: Some(Arc::from(live.user.as_str())),
            session: Some(nudge::StreamSession {
                key: SessionKey(token_hash.0),
                expires_at: tokio::time::Instant::now() + std::time::Duration::from_millis(left_ms),
            }),
        })
    }

    /// A private room's topic is for the members it has now: a copy of the list (a few names)
    /// that delivery asks, whatever the view says by then.
    fn readers(&self, topic: &str) -> Readers {
        self.view.with_members(topic, |members| match members {
            None => Readers::Anyone,
            Some(members) => {
                let members = members.clone();
                Readers::only(move |user| allowed(Some(&members), user))
            }
        })
    }

    fn may_read(&self, principal: Option<&str>, topic: &str) -> bool {
        self.view.may_read_topic(topic, principal)
    }

    async fn session_ended(&self, key: &SessionKey) -> bool {
        match self.accounts.get() {
            Some(accounts) => matches!(accounts.live_session(TokenHash(key.0)).await, Ok(None)),
            None => false,
        }
    }

    fn committed(&self, event: &LoggedEvent) -> Vec<Revocation> {
        let Some(change) = event
            .note
            .as_deref()
            .and_then(|note| AccessChange::from_note(note, event.id))
        else {
            return Vec::new();
        };
        self.view.apply(&change);
        match change {
            AccessChange::Revoked { room, user, .. } => vec![Revocation {
                principal: user,
                topic: format!("rooms/{room}"),
            }],
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_note_reads_back_as_its_change() {
        for change in [
            AccessChange::MadePrivate {
                room: "x".into(),
                creator: "Zoë B".into(),
                event_id: 3,
            },
            AccessChange::Granted {
                room: "x".into(),
                user: "bob".into(),
                event_id: 3,
            },
            AccessChange::Revoked {
                room: "x".into(),
                user: "bob".into(),
                event_id: 3,
            },
        ] {
            assert_eq!(AccessChange::from_note(&change.note(), 3), Some(change));
        }
        assert_eq!(AccessChange::from_note("other", 3), None);
    }

    #[test]
    fn private_rooms_are_for_members_only() {
        let view = AccessView::default();
        assert!(view.may_read_topic("rooms/x", None));
        view.apply(&AccessChange::MadePrivate {
            room: "x".into(),
            creator: "ann".into(),
            event_id: 3,
        });
        assert!(view.may_read_topic("rooms/x", Some("ann")));
        assert!(!view.may_read_topic("rooms/x", Some("bob")));
        assert!(!view.may_read_topic("rooms/x", None));
        assert!(
            view.may_read_topic("rooms", None),
            "the room list is public"
        );
        view.apply(&AccessChange::Granted {
            room: "x".into(),
            user: "bob".into(),
            event_id: 5,
        });
        assert!(view.may_read_room("x", Some("bob")));
        view.apply(&AccessChange::Revoked {
            room: "x".into(),
            user: "bob".into(),
            event_id: 7,
        });
        assert!(!view.may_read_room("x", Some("bob")));
        assert!(view.is_private("x"));
        assert_eq!(view.version(), 7);
    }
}
