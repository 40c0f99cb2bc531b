//! Property tests of path patterns: any pattern and any path are read without a panic, and a
//! pattern gives back exactly the values substituted into its `:name` segments.

use proptest::prelude::*;

use super::*;

const CASES: u32 = 256;

/// One segment of a generated pattern: literal text, or a named segment and the value that a
/// path puts in its place.
#[derive(Debug, Clone)]
enum Part {
    Literal(String),
    Param { name: String, value: String },
}

/// Literal segments never start with `:` (that would make them named) and hold no `/`; they
/// may be empty, as in `/a//b` or a trailing `/`.
fn literal() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z0-9._~-]{0,8}", "[^/:][^/]{0,8}", Just(String::new())]
}

/// Values are whatever one non-empty path segment can hold, a leading `:` included.
fn part() -> impl Strategy<Value = Part> {
    prop_oneof![
        literal().prop_map(Part::Literal),
        ("[^/]{0,8}", "[^/]{1,8}").prop_map(|(name, value)| Part::Param { name, value }),
    ]
}

/// The pattern text and the path made from it.
fn texts(parts: &[Part]) -> (String, String) {
    let mut pattern = String::new();
    let mut path = String::new();
    for part in parts {
        pattern.push('/');
        path.push('/');
        match part {
            Part::Literal(text) => {
                pattern.push_str(text);
                path.push_str(text);
            }
            Part::Param { name, value } => {
                pattern.push(':');
                pattern.push_str(name);
                path.push_str(value);
            }
        }
    }
    (pattern, path)
}

fn request(path: &str) -> RequestInfo<'_> {
    RequestInfo {
        method: "GET",
        path,
        origin: "https://example.org",
        same_origin: true,
        navigate: false,
        only_if_cached: false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// Any text is a pattern and any text a path: matching answers, never panics, and the
    /// pattern matcher agrees with the captures.
    #[test]
    fn any_pattern_and_any_path_are_read(pattern in "\\PC{0,24}|[/:a]{0,12}", path in "\\PC{0,24}|[/:a]{0,12}") {
        let parsed = Pattern::parse(&pattern);
        let captured = parsed.captures(&path).is_some();
        prop_assert_eq!(Matcher::Pattern(parsed).matches(&request(&path)), captured);
    }

    /// A pattern's own text is a path it matches, each named segment capturing its own
    /// `:name` text (a value may start with `:`).
    #[test]
    fn a_pattern_matches_its_own_text(pattern in "\\PC{0,24}|[/:a]{0,12}") {
        let parsed = Pattern::parse(&pattern);
        let captures = parsed.captures(&pattern);
        let expected: Vec<(&str, &str)> = pattern
            .split('/')
            .filter_map(|segment| segment.strip_prefix(':').map(|name| (name, segment)))
            .collect();
        prop_assert_eq!(captures, Some(expected));
    }

    /// Substituting values into a pattern's named segments makes a path whose captures are
    /// those values, by name and in order.
    #[test]
    fn captures_give_back_the_substituted_values(parts in prop::collection::vec(part(), 0..8)) {
        let (pattern, path) = texts(&parts);
        let expected: Vec<(&str, &str)> = parts
            .iter()
            .filter_map(|part| match part {
                Part::Param { name, value } => Some((name.as_str(), value.as_str())),
                Part::Literal(_) => None,
            })
            .collect();
        let parsed = Pattern::parse(&pattern);
        prop_assert_eq!(parsed.captures(&path), Some(expected));
    }

    /// Patterns match whole paths: one more segment, or a named segment left empty, and the
    /// path is not taken.
    #[test]
    fn only_whole_paths_with_every_segment_named_match(
        parts in prop::collection::vec(part(), 1..8),
        extra in "[^/]{0,8}",
        emptied in any::<prop::sample::Index>(),
    ) {
        let (pattern, path) = texts(&parts);
        let pattern = Pattern::parse(&pattern);
        let longer = format!("{path}/{extra}");
        prop_assert_eq!(pattern.captures(&longer), None);
        let params: Vec<usize> = parts
            .iter()
            .enumerate()
            .filter(|(_, part)| matches!(part, Part::Param { .. }))
            .map(|(at, _)| at)
            .collect();
        if !params.is_empty() {
            let mut parts = parts;
            if let Part::Param { value, .. } = &mut parts[params[emptied.index(params.len())]] {
                value.clear();
            }
            let (_, path) = texts(&parts);
            prop_assert_eq!(pattern.captures(&path), None);
        }
    }
}
