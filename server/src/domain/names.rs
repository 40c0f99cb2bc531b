//! Names of people (account names and message authors): their normal form, what makes two of
//! them the same account, and what a name may not contain.
//!
//! A name is kept in a normal form: NFKC (a full-width `Ａｎｎ` or a ligature becomes its plain
//! letters), each run of white space one space, none at either end. Two names are the same
//! account when their [`name_key`]s are equal: the normal form, lower-cased, so `Ann`, `ann `
//! and `ＡＮＮ` are one account. A name hides nothing from its reader: no control or format
//! characters (bidi overrides, zero-width spaces and joiners), nor the other default-ignorable
//! code points that render as nothing (Hangul fillers, variation selectors), nor private-use,
//! surrogate or unassigned code points. It starts with something visible (not a combining mark)
//! and holds at least one letter or digit, which also keeps out `.` and `..`, the two names no
//! URL path can carry.
//!
//! Look-alikes from other scripts (a Cyrillic `а` in `аnn`) are visible characters and are not
//! refused here.

use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategory, GeneralCategoryGroup, UnicodeGeneralCategory};

use crate::error::ApiError;

/// The normal form of `raw`, or the 400 that says why it is not a name. `field` names the
/// JSON field in codes and messages (`empty_author`, `name_too_long`, …).
pub fn normalise(field: &str, raw: &str, max_chars: usize) -> Result<String, ApiError> {
    let name = normal_form(raw);
    if name.is_empty() {
        return Err(ApiError::invalid(
            &format!("empty_{field}"),
            &format!("`{field}` must not be empty"),
        ));
    }
    let chars = name.chars().count();
    if chars > max_chars {
        return Err(ApiError::invalid(
            &format!("{field}_too_long"),
            &format!("`{field}` has {chars} characters; at most {max_chars} are allowed"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            &format!("{field}_control_character"),
            &format!("`{field}` contains a control character"),
        ));
    }
    if let Some(c) = name.chars().find(|&c| invisible(c)) {
        return Err(ApiError::invalid(
            &format!("{field}_invisible_character"),
            &format!(
                "`{field}` contains U+{:04X}, a character that shows nothing or changes how the \
                 text around it is shown",
                u32::from(c)
            ),
        ));
    }
    let starts_with_mark = name
        .chars()
        .next()
        .is_some_and(|c| c.general_category_group() == GeneralCategoryGroup::Mark);
    let has_letter_or_digit = name.chars().any(|c| {
        matches!(
            c.general_category_group(),
            GeneralCategoryGroup::Letter | GeneralCategoryGroup::Number
        )
    });
    if starts_with_mark || !has_letter_or_digit {
        return Err(ApiError::invalid(
            &format!("invalid_{field}"),
            &format!(
                "`{field}` needs at least one letter or digit and cannot start with a \
                 combining mark"
            ),
        ));
    }
    Ok(name)
}

/// NFKC with white space collapsed and trimmed, without any check: what [`normalise`] keeps,
/// and what a name stored before these rules is compared by.
pub fn normal_form(raw: &str) -> String {
    let nfkc: String = raw.nfkc().collect();
    nfkc.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What makes two names one account: the normal form, lower-cased (and normalised again, since
/// lower-casing may leave a sequence NFKC would compose).
pub fn name_key(name: &str) -> String {
    normal_form(name).to_lowercase().nfkc().collect()
}

/// Whether `c` shows nothing, or changes how its neighbours show, without being white space.
fn invisible(c: char) -> bool {
    matches!(
        c.general_category(),
        GeneralCategory::Format
            | GeneralCategory::PrivateUse
            | GeneralCategory::Surrogate
            | GeneralCategory::Unassigned
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
    ) || (c.general_category() == GeneralCategory::SpaceSeparator && c != ' ')
        || DEFAULT_IGNORABLE_NOT_FORMAT
            .iter()
            .any(|&(low, high)| (low..=high).contains(&c))
}

/// The default-ignorable code points (Unicode's DerivedCoreProperties.txt) that are not of
/// category Cf or unassigned: marks and letters that render as nothing.
const DEFAULT_IGNORABLE_NOT_FORMAT: &[(char, char)] = &[
    ('\u{034F}', '\u{034F}'),   // combining grapheme joiner
    ('\u{115F}', '\u{1160}'),   // Hangul choseong and jungseong fillers
    ('\u{17B4}', '\u{17B5}'),   // Khmer inherent vowels
    ('\u{180B}', '\u{180F}'),   // Mongolian free variation selectors
    ('\u{3164}', '\u{3164}'),   // Hangul filler
    ('\u{FE00}', '\u{FE0F}'),   // variation selectors
    ('\u{FFA0}', '\u{FFA0}'),   // half-width Hangul filler
    ('\u{E0100}', '\u{E01EF}'), // variation selectors supplement
    ('\u{2800}', '\u{2800}'),   // braille pattern blank: not default-ignorable, but blank
];

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(raw: &str) -> String {
        normalise("name", raw, 64).unwrap_or_else(|e| panic!("{raw:?}: {e}"))
    }

    fn refused(raw: &str) -> String {
        match normalise("name", raw, 64) {
            Ok(name) => panic!("{raw:?} was accepted as {name:?}"),
            Err(ApiError::Client { code, .. }) => code,
            Err(other) => panic!("{raw:?}: {other}"),
        }
    }

    #[test]
    fn names_take_their_normal_form() {
        assert_eq!(ok("  Ann   Lee "), "Ann Lee");
        assert_eq!(
            ok("Ann\u{3000}Lee"),
            "Ann Lee",
            "an ideographic space is a space"
        );
        assert_eq!(ok("Ann\u{A0}Lee"), "Ann Lee", "so is a no-break space");
        assert_eq!(ok("Ann\tLee\n"), "Ann Lee");
        assert_eq!(ok("Ａｎｎ"), "Ann", "full-width letters are letters");
        assert_eq!(ok("ﬁona"), "fiona", "a ligature is its letters");
        assert_eq!(ok("Zoe\u{301}"), "Zoé", "decomposed accents are composed");
        assert_eq!(ok("a/b"), "a/b");
        assert_eq!(ok("100%"), "100%");
        assert_eq!(ok("Zoë 🦀"), "Zoë 🦀");
    }

    #[test]
    fn keys_ignore_case_width_and_spacing() {
        let key = name_key("ann");
        for same in ["Ann", "ANN", "ann ", " ann", "Ａｎｎ", "ＡＮＮ"] {
            assert_eq!(name_key(same), key, "{same:?}");
        }
        assert_eq!(name_key("Ann  Lee"), name_key("ann lee"));
        assert_ne!(name_key("ann"), name_key("anna"));
    }

    #[test]
    fn invisible_and_directional_trickery_is_refused() {
        for raw in [
            "ann\u{202E}",  // right-to-left override
            "\u{2067}ann",  // right-to-left isolate
            "a\u{200B}nn",  // zero-width space
            "an\u{200D}n",  // zero-width joiner
            "ann\u{FEFF}",  // byte-order mark
            "ann\u{AD}",    // soft hyphen
            "ann\u{E0041}", // tag character
            "ann\u{3164}",  // Hangul filler
            "ann\u{FE0F}",  // variation selector
            "an\u{34F}n",   // combining grapheme joiner
            "ann\u{E000}",  // private use
            "ann\u{2800}",  // braille blank
        ] {
            let code = refused(raw);
            assert!(
                code == "name_invisible_character" || code == "name_control_character",
                "{raw:?}: {code}"
            );
        }
        assert_eq!(refused("an\u{7}n"), "name_control_character");
    }

    #[test]
    fn a_name_needs_something_to_read() {
        for raw in ["", " ", "\u{3000}", "\n\t"] {
            assert_eq!(refused(raw), "empty_name", "{raw:?}");
        }
        for raw in [".", "..", "---", "\u{301}ann", "🦀"] {
            assert_eq!(refused(raw), "invalid_name", "{raw:?}");
        }
        assert_eq!(refused(&"é".repeat(65)), "name_too_long");
        assert_eq!(ok(&"é".repeat(64)).chars().count(), 64);
    }
}
