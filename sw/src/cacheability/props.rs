//! Property tests of the header parsing that decides what is stored: any `Cache-Control` or
//! `Vary` value is read without a panic, directive and field names are case-insensitive, and a
//! directive is found wherever it stands among others.

use proptest::prelude::*;

use super::*;

const CASES: u32 = 256;

/// Header text, mostly of the characters that matter to the parsing.
fn value() -> impl Strategy<Value = String> {
    prop_oneof!["\\PC{0,32}", "[a-zA-Z =,\"*\t-]{0,32}"]
}

/// A directive other than `no-store` and `private`, with or without an argument.
fn other_directive() -> impl Strategy<Value = String> {
    ("[a-zA-Z-]{1,12}", prop::option::of("[a-z0-9\"]{0,6}"))
        .prop_filter("another directive", |(name, _)| {
            !name.eq_ignore_ascii_case("no-store") && !name.eq_ignore_ascii_case("private")
        })
        .prop_map(|(name, argument)| match argument {
            Some(argument) => format!("{name}={argument}"),
            None => name,
        })
}

/// `name` with each letter's case and the whitespace around it chosen by `flips` and `pads`.
fn spelled(name: &str, flips: &[bool], pads: (&str, &str)) -> String {
    let cased: String = name
        .chars()
        .zip(flips.iter().cycle())
        .map(|(c, upper)| if *upper { c.to_ascii_uppercase() } else { c })
        .collect();
    format!("{}{cased}{}", pads.0, pads.1)
}

/// A `Vary` field: a few names in any case, so that the same one comes twice, or any token.
fn field() -> impl Strategy<Value = String> {
    let name = prop::sample::select(vec!["Accept", "accept-encoding", "Origin", "X-Lang"]);
    prop_oneof![
        (name, prop::collection::vec(any::<bool>(), 1..8)).prop_map(|(name, flips)| spelled(
            name,
            &flips,
            ("", "")
        )),
        "[a-zA-Z-]{1,10}",
        Just("*".to_owned()),
    ]
}

fn pad() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["", " ", "  ", "\t"])
}

/// A successful GET with these headers: only the headers can refuse it.
fn exchange<'a>(cache_control: Option<&'a str>, vary: Option<&'a str>) -> Exchange<'a> {
    Exchange {
        method: "GET",
        status: 200,
        kind: Kind::Transparent,
        cache_control,
        vary,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// Any header values: an answer, never a panic; and the answer is the same whatever the
    /// case of the letters.
    #[test]
    fn any_header_value_is_read_the_same_in_any_case(cache_control in value(), vary in value()) {
        let upper = cache_control.to_ascii_uppercase();
        let lower = cache_control.to_ascii_lowercase();
        prop_assert_eq!(has_no_store(&upper), has_no_store(&lower));
        prop_assert_eq!(is_private(&upper), is_private(&lower));
        prop_assert_eq!(has_no_store(&cache_control), has_no_store(&lower));
        prop_assert_eq!(is_private(&cache_control), is_private(&lower));
        prop_assert_eq!(vary_fields(&vary), vary_fields(&vary.to_ascii_uppercase()));
        let stored = check(&exchange(Some(&cache_control), Some(&vary)));
        prop_assert_eq!(stored, check(&exchange(Some(&upper), Some(&vary.to_ascii_uppercase()))));
    }

    /// `no-store` and `private`, in any case, with any whitespace and with or without a stray
    /// argument, are found at any place among other directives; without them, neither is.
    #[test]
    fn a_directive_is_found_wherever_it_stands(
        others in prop::collection::vec(other_directive(), 0..6),
        at in any::<prop::sample::Index>(),
        wanted in prop::sample::select(vec!["no-store", "private"]),
        flips in prop::collection::vec(any::<bool>(), 1..8),
        pads in (pad(), pad()),
        argument in prop::option::of("[a-z0-9\"]{0,6}"),
    ) {
        let without = others.join(",");
        prop_assert!(!has_no_store(&without), "{}", without);
        prop_assert!(!is_private(&without), "{}", without);
        prop_assert_eq!(check(&exchange(Some(&without), None)), Ok(()));

        let mut directive = spelled(wanted, &flips, pads);
        if let Some(argument) = argument {
            directive = format!("{directive}={argument}");
        }
        let mut directives = others;
        directives.insert(at.index(directives.len() + 1), directive);
        let with = directives.join(",");
        if wanted == "no-store" {
            prop_assert!(has_no_store(&with), "{}", with);
            prop_assert_eq!(check(&exchange(Some(&with), None)), Err(Refusal::NoStore));
        } else {
            prop_assert!(is_private(&with), "{}", with);
            prop_assert!(!has_no_store(&with), "{}", with);
        }
    }

    /// The fields a `Vary` value lists come back once each, in lower case, in the order first
    /// named, whatever their case and spacing; `*` is never a field, and it refuses storing.
    #[test]
    fn vary_lists_each_field_once(
        fields in prop::collection::vec(field(), 0..8),
        pads in prop::collection::vec((pad(), pad()), 8),
    ) {
        let vary = fields
            .iter()
            .zip(&pads)
            .map(|(field, (before, after))| format!("{before}{field}{after}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut expected: Vec<String> = Vec::new();
        for field in &fields {
            let field = field.to_ascii_lowercase();
            if field != "*" && !expected.contains(&field) {
                expected.push(field);
            }
        }
        prop_assert_eq!(vary_fields(&vary), expected);
        let star = fields.iter().any(|field| field == "*");
        let stored = check(&exchange(None, Some(&vary)));
        prop_assert_eq!(stored, if star { Err(Refusal::VaryStar) } else { Ok(()) });
    }
}
