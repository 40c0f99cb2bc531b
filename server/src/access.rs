//! Who may read which room, held in memory so that every delivery can ask without a query.
//!
//! Rooms are public unless marked private; a private room is readable by its members only. The
//! store fills this view when it opens and changes it, in commit order, after each commit that
//! changed a membership and before it publishes that commit's events: so an event committed
//! after a revocation never reaches the revoked member, and the answer to the revoking request
//! comes after the view already says so. The event stream (replay and live) and the HTTP reads
//! all ask this one view.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock, RwLockReadGuard};

use crate::domain::room_of_topic;

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
    /// Whether it takes access away from someone (rather than giving it).
    pub fn narrows(&self) -> bool {
        !matches!(self, Self::Granted { .. })
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

    /// Applies one committed change.
    pub fn apply(&self, change: &AccessChange) {
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
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

#[cfg(test)]
mod tests {
    use super::*;

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
