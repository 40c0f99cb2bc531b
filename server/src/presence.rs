//! Presence: who is in a room now. Ephemeral by design: it lives in memory with a time to live,
//! is never logged, and is served `no-store`. Announcing refreshes the deadline.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Who is in which room, until when.
#[derive(Clone)]
pub struct Presence {
    ttl: Duration,
    rooms: Arc<Mutex<HashMap<String, HashMap<String, Instant>>>>,
}

impl Presence {
    /// Announcements last `ttl` unless refreshed.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            rooms: Arc::default(),
        }
    }

    /// Marks `name` present in `room`; true when they were not present before (the list changed).
    pub fn announce(&self, room: &str, name: &str) -> bool {
        let now = Instant::now();
        let mut rooms = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
        let here = rooms.entry(room.to_owned()).or_default();
        here.retain(|_, until| *until > now);
        here.insert(name.to_owned(), now + self.ttl).is_none()
    }

    /// The names present in `room`, sorted.
    pub fn here(&self, room: &str) -> Vec<String> {
        let now = Instant::now();
        let mut rooms = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
        let Some(here) = rooms.get_mut(room) else {
            return Vec::new();
        };
        here.retain(|_, until| *until > now);
        let mut names: Vec<String> = here.keys().cloned().collect();
        names.sort();
        if names.is_empty() {
            rooms.remove(room);
        }
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announcements_expire() {
        let presence = Presence::new(Duration::ZERO);
        assert!(presence.announce("r", "ann"));
        assert!(presence.here("r").is_empty());
        let presence = Presence::new(Duration::from_secs(60));
        assert!(presence.announce("r", "bob"));
        assert!(!presence.announce("r", "bob"));
        assert_eq!(presence.here("r"), vec!["bob".to_owned()]);
    }
}
