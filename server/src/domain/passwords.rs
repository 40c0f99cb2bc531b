//! What a new password must be: long enough, not absurdly long, and not one an attacker tries
//! early. Strength is estimated by zxcvbn (Dropbox's estimator, which knows the common
//! passwords, names, words, keyboard walks, dates, repeats and sequences, and the user's own
//! name); a password it expects to fall within 10^8 guesses is refused.

use zxcvbn::Score;

use crate::error::ApiError;

/// Shortest password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest password, in characters (argon2 would take more, but nobody types more).
pub const MAX_PASSWORD_CHARS: usize = 256;
/// The weakest score accepted: zxcvbn's "safely unguessable", more than 10^8 guesses.
pub const MIN_SCORE: Score = Score::Three;
/// Characters zxcvbn looks at: its matching grows faster than linearly with the length, and a
/// password this long is past any list it knows.
const SCORED_CHARS: usize = 64;

/// Checks a new password for `user` (its length and its strength).
pub fn validate_password(password: &str, user: &str) -> Result<(), ApiError> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(ApiError::invalid(
            "password_too_short",
            &format!("passwords have at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(ApiError::invalid(
            "password_too_long",
            &format!("passwords have at most {MAX_PASSWORD_CHARS} characters"),
        ));
    }
    let scored: String = password.chars().take(SCORED_CHARS).collect();
    let estimate = zxcvbn::zxcvbn(&scored, &[user]);
    if estimate.score() < MIN_SCORE {
        let hint = estimate
            .feedback()
            .and_then(|f| f.warning().map(|w| format!(" ({w})")))
            .unwrap_or_default();
        return Err(ApiError::invalid(
            "password_too_weak",
            &format!(
                "this password is among the first an attacker would try{hint}; a few unrelated \
                 words make a strong one"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(password: &str, user: &str) -> Option<String> {
        match validate_password(password, user) {
            Ok(()) => None,
            Err(ApiError::Client { code, .. }) => Some(code),
            Err(other) => panic!("{other}"),
        }
    }

    #[test]
    fn lengths_count_characters() {
        assert_eq!(
            code("1234567", "ann").as_deref(),
            Some("password_too_short")
        );
        assert_eq!(
            code(&"x".repeat(257), "ann").as_deref(),
            Some("password_too_long")
        );
    }

    #[test]
    fn common_passwords_are_refused() {
        for weak in [
            "12345678",
            "password",
            "qwertyui",
            "password1",
            "iloveyou",
            "11111111",
            "abcdefgh",
            "Password123",
            "letmein!",
            "ann-12345678",
        ] {
            assert_eq!(
                code(weak, "ann").as_deref(),
                Some("password_too_weak"),
                "{weak}"
            );
        }
        // The user's own name is no secret either.
        assert_eq!(
            code("annabelle1990", "annabelle").as_deref(),
            Some("password_too_weak")
        );
    }

    #[test]
    fn strong_passwords_pass_quickly_whatever_their_length() {
        for strong in [
            "correct horse battery",
            "lantern-quiet-meadow-42",
            "t7#Vq!x9Lm2$",
            &"correct horse battery staple ".repeat(8)[..232],
        ] {
            let started = std::time::Instant::now();
            assert_eq!(code(strong, "ann"), None, "{strong}");
            assert!(
                started.elapsed() < std::time::Duration::from_secs(1),
                "{strong}"
            );
        }
    }
}
