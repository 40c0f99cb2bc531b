//! Topic selectors. A stream subscribes to one or more selectors: an exact topic
//! (`lists/general`) or a prefix ending in `/*` (`lists/*` matches `lists/general`, not `lists`).

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
    /// Every topic (not something a request can ask for: see [`TopicSet::everything`]).
    Any,
}

/// The selectors of one subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSet(Vec<Selector>);

impl TopicSet {
    /// Every topic: what nudge's own watchers of the log (push) follow; no request can ask for
    /// it (nor replay it: it has no exact topic or prefix to scan).
    pub fn everything() -> Self {
        Self(vec![Selector::Any])
    }

    /// The selectors as they are written (`lists/general`, `lists/*`), e.g. to store them.
    pub fn selectors(&self) -> Vec<String> {
        self.0
            .iter()
            .map(|s| match s {
                Selector::Exact(t) => t.clone(),
                Selector::Prefix(p) => format!("{p}*"),
                Selector::Any => "*".to_owned(),
            })
            .collect()
    }

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
                        &format!("`{topic}` is not a topic (e.g. lists/general or lists/*)"),
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
                "name at least one topic: /api/events?topic=lists/general",
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
            Selector::Prefix(_) | Selector::Any => None,
        })
    }

    /// The prefixes named, each with its trailing `/` (`lists/*` gives `lists/`).
    pub fn prefixes(&self) -> impl Iterator<Item = &str> {
        self.0.iter().filter_map(|s| match s {
            Selector::Prefix(p) => Some(p.as_str()),
            Selector::Exact(_) | Selector::Any => None,
        })
    }

    /// Whether every selector is an exact topic in `ended`: nothing is left to deliver.
    pub fn only_exact_in(&self, ended: &std::collections::HashSet<String>) -> bool {
        self.0.iter().all(|s| match s {
            Selector::Exact(t) => ended.contains(t),
            Selector::Prefix(_) | Selector::Any => false,
        })
    }

    /// Whether an event on `topic` belongs to this subscription.
    pub fn matches(&self, topic: &str) -> bool {
        self.0.iter().any(|s| match s {
            Selector::Exact(t) => t == topic,
            Selector::Prefix(p) => topic.len() > p.len() && topic.starts_with(p.as_str()),
            Selector::Any => true,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_and_prefix_selectors() {
        let set = TopicSet::parse(["lists/*", "lobby"]).unwrap();
        assert!(set.matches("lists/general"));
        assert!(set.matches("lists/a/b"));
        assert!(!set.matches("lists"));
        assert!(!set.matches("lists/"));
        assert!(set.matches("lobby"));
        assert!(!set.matches("lobby/x"));
    }

    #[test]
    fn exact_topics_and_what_is_left() {
        let set = TopicSet::parse(["lists/a", "lists/*", "lists/b"]).unwrap();
        assert_eq!(set.exact().collect::<Vec<_>>(), ["lists/a", "lists/b"]);
        let ended = ["lists/a".to_owned(), "lists/b".to_owned()].into();
        assert!(!set.only_exact_in(&ended), "the prefix is still open");
        let exact = TopicSet::parse(["lists/a", "lists/b"]).unwrap();
        assert!(exact.only_exact_in(&ended));
    }

    /// One segment of a topic name.
    const SEGMENT: &str = "[a-zA-Z0-9._-]{1,8}";

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Any text, any number of selectors: a set or a 400, never a panic, and every set
        /// holds between one and the most selectors.
        #[test]
        fn any_selectors_parse_or_are_refused(raw in proptest::collection::vec("\\PC{0,12}|[a-z/*.]{0,12}", 0..40)) {
            if let Ok(set) = TopicSet::parse(raw.iter().map(String::as_str)) {
                proptest::prop_assert!(!set.0.is_empty() && set.0.len() <= MAX_SELECTORS);
                for topic in &raw {
                    let _ = set.matches(topic);
                }
            }
        }

        /// An exact topic reads back as itself and matches itself only (not what is below it).
        #[test]
        fn an_exact_topic_round_trips(segments in proptest::collection::vec(SEGMENT, 1..4), below in SEGMENT) {
            let topic = segments.join("/");
            let set = TopicSet::parse([topic.as_str()]).unwrap();
            proptest::prop_assert_eq!(set.exact().collect::<Vec<_>>(), [topic.as_str()]);
            proptest::prop_assert!(set.matches(&topic));
            let under = format!("{topic}/{below}");
            proptest::prop_assert!(!set.matches(&under));
            proptest::prop_assert_eq!(TopicSet::parse([topic.as_str(), topic.as_str()]).unwrap(), set);
        }

        /// A prefix matches every topic below it, at any depth, and neither itself nor a
        /// sibling that only starts the same way.
        #[test]
        fn a_prefix_matches_below_itself_only(
            segments in proptest::collection::vec(SEGMENT, 1..4),
            below in proptest::collection::vec(SEGMENT, 1..3),
        ) {
            let prefix = segments.join("/");
            let set = TopicSet::parse([format!("{prefix}/*").as_str()]).unwrap();
            proptest::prop_assert_eq!(set.exact().count(), 0);
            let below_topic = format!("{prefix}/{}", below.join("/"));
            proptest::prop_assert!(set.matches(&below_topic));
            proptest::prop_assert!(!set.matches(&prefix));
            let sibling = format!("{prefix}x/{}", below.join("/"));
            proptest::prop_assert!(!set.matches(&sibling));
        }
    }

    #[test]
    fn rejects_bad_selectors() {
        for bad in ["", "*", "lists*", "a/*/b", "/lists", "a b", "a//b"] {
            assert!(TopicSet::parse([bad]).is_err(), "{bad:?}");
        }
        assert!(TopicSet::parse(std::iter::empty()).is_err());
    }
}
