//! Topic selectors. A stream subscribes to one or more selectors: an exact topic
//! (`rooms/general`) or a prefix ending in `/*` (`rooms/*` matches `rooms/general`, not `rooms`).

use crate::error::ApiError;

/// Longest selector accepted, in bytes.
const MAX_SELECTOR_LEN: usize = 200;
/// Most selectors on one stream.
pub const MAX_SELECTORS: usize = 32;

/// One selector, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Selector {
    Exact(String),
    /// Holds the prefix including its trailing `/`.
    Prefix(String),
}

/// The selectors of one subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSet(Vec<Selector>);

impl TopicSet {
    /// Parses the `topic=` values of a request; at least one is required.
    pub fn parse<'a>(raw: impl IntoIterator<Item = &'a str>) -> Result<Self, ApiError> {
        let mut selectors = Vec::new();
        for topic in raw {
            let valid = !topic.is_empty()
                && topic.len() <= MAX_SELECTOR_LEN
                && topic
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_/.*".contains(&b))
                && !topic.starts_with('/')
                && !topic.contains("//");
            let star = topic.find('*');
            let selector = match star {
                None if valid => Selector::Exact(topic.to_owned()),
                Some(i) if valid && i == topic.len() - 1 && topic.ends_with("/*") => {
                    Selector::Prefix(topic[..topic.len() - 1].to_owned())
                }
                _ => {
                    return Err(ApiError::invalid(
                        "invalid_topic",
                        &format!("`{topic}` is not a topic (e.g. rooms/general or rooms/*)"),
                    ))
                }
            };
            if !selectors.contains(&selector) {
                selectors.push(selector);
            }
        }
        if selectors.is_empty() {
            return Err(ApiError::invalid(
                "missing_topic",
                "name at least one topic: /api/events?topic=rooms/general",
            ));
        }
        if selectors.len() > MAX_SELECTORS {
            return Err(ApiError::invalid(
                "too_many_topics",
                &format!("at most {MAX_SELECTORS} topics per stream"),
            ));
        }
        Ok(Self(selectors))
    }

    /// The exact topics named (not the prefixes).
    pub fn exact(&self) -> impl Iterator<Item = &str> {
        self.0.iter().filter_map(|s| match s {
            Selector::Exact(t) => Some(t.as_str()),
            Selector::Prefix(_) => None,
        })
    }

    /// The prefixes named, each with its trailing `/` (`rooms/*` gives `rooms/`).
    pub fn prefixes(&self) -> impl Iterator<Item = &str> {
        self.0.iter().filter_map(|s| match s {
            Selector::Prefix(p) => Some(p.as_str()),
            Selector::Exact(_) => None,
        })
    }

    /// Whether every selector is an exact topic in `ended`: nothing is left to deliver.
    pub fn only_exact_in(&self, ended: &std::collections::HashSet<String>) -> bool {
        self.0.iter().all(|s| match s {
            Selector::Exact(t) => ended.contains(t),
            Selector::Prefix(_) => false,
        })
    }

    /// Whether an event on `topic` belongs to this subscription.
    pub fn matches(&self, topic: &str) -> bool {
        self.0.iter().any(|s| match s {
            Selector::Exact(t) => t == topic,
            Selector::Prefix(p) => topic.len() > p.len() && topic.starts_with(p.as_str()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_and_prefix_selectors() {
        let set = TopicSet::parse(["rooms/*", "lobby"]).unwrap();
        assert!(set.matches("rooms/general"));
        assert!(set.matches("rooms/a/b"));
        assert!(!set.matches("rooms"));
        assert!(!set.matches("rooms/"));
        assert!(set.matches("lobby"));
        assert!(!set.matches("lobby/x"));
    }

    #[test]
    fn exact_topics_and_what_is_left() {
        let set = TopicSet::parse(["rooms/a", "rooms/*", "rooms/b"]).unwrap();
        assert_eq!(set.exact().collect::<Vec<_>>(), ["rooms/a", "rooms/b"]);
        let ended = ["rooms/a".to_owned(), "rooms/b".to_owned()].into();
        assert!(!set.only_exact_in(&ended), "the prefix is still open");
        let exact = TopicSet::parse(["rooms/a", "rooms/b"]).unwrap();
        assert!(exact.only_exact_in(&ended));
    }

    #[test]
    fn rejects_bad_selectors() {
        for bad in ["", "*", "rooms*", "a/*/b", "/rooms", "a b", "a//b"] {
            assert!(TopicSet::parse([bad]).is_err(), "{bad:?}");
        }
        assert!(TopicSet::parse(std::iter::empty()).is_err());
    }
}
