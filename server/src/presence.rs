//! Presence: who is in a room now. Ephemeral by design: it lives in memory with a time to live,
//! is never logged, and is served `no-store`. Announcing refreshes the deadline. Only rooms
//! that exist may be announced in (the routes refuse others), and a timer sweeps expired
//! entries ([`Presence::sweep`]), so what nobody reads again does not stay in memory.

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

    /// How often [`Presence::sweep`] should run: about once per time to live, within 1–60 s.
    pub fn sweep_every(&self) -> Duration {
        self.ttl
            .clamp(Duration::from_secs(1), Duration::from_secs(60))
    }

    /// Forgets every expired announcement, and rooms left with none.
    pub fn sweep(&self) {
        self.sweep_at(Instant::now());
    }

    /// [`Presence::sweep`] as if the time were `now` (tests move the clock instead of waiting).
    pub fn sweep_at(&self, now: Instant) {
        let mut rooms = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
        rooms.retain(|_, here| {
            here.retain(|_, until| *until > now);
            !here.is_empty()
        });
        rooms.shrink_to_fit();
    }

    /// How many announcements are held (expired ones not yet swept included).
    pub fn entries(&self) -> usize {
        let rooms = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
        rooms.values().map(HashMap::len).sum()
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

    #[test]
    fn a_sweep_forgets_expired_entries_that_nobody_reads() {
        let presence = Presence::new(Duration::from_secs(30));
        for room in 0..100 {
            presence.announce(&format!("room-{room}"), "ann");
        }
        presence.announce("kept", "bob");
        assert_eq!(presence.entries(), 101);
        presence.sweep_at(Instant::now() + Duration::from_secs(10));
        assert_eq!(presence.entries(), 101, "nothing has expired yet");
        presence.sweep_at(Instant::now() + Duration::from_secs(31));
        assert_eq!(presence.entries(), 0);
        assert!(
            presence.rooms.lock().unwrap().is_empty(),
            "empty rooms go too"
        );
    }
}
