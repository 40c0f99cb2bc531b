//! Session tokens and the cookie that carries them.
//!
//! A token is 32 random bytes, base64url; the browser keeps it in an `HttpOnly`, `SameSite=Lax`
//! cookie (scripts cannot read it; other sites' forms and fetches do not send it along with a
//! write), `Secure` when the request came over TLS. The server keeps only its SHA-256, so the
//! database alone signs nobody in.

use std::time::Duration;

use actix_web::HttpRequest;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

use crate::store::accounts::TokenHash;

/// The cookie's name.
pub const COOKIE_NAME: &str = "nudge_session";
/// Characters in a token: 32 bytes in unpadded base64.
const TOKEN_CHARS: usize = 43;

/// A session's secret, as the cookie carries it.
pub struct SessionToken(String);

impl SessionToken {
    /// A new random token (from the thread's cryptographically secure generator).
    pub fn generate() -> Self {
        let bytes: [u8; 32] = rand::random();
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// The token of the request's session cookie, when it has one of the right shape.
    pub fn from_request(req: &HttpRequest) -> Option<Self> {
        nudge::Credentials::from_request(req)
            .cookie(COOKIE_NAME)
            .and_then(Self::from_cookie_value)
    }

    /// The token a session cookie's value holds, when it has the right shape.
    pub fn from_cookie_value(value: &str) -> Option<Self> {
        let shaped = value.len() == TOKEN_CHARS
            && URL_SAFE_NO_PAD
                .decode(value)
                .is_ok_and(|bytes| bytes.len() == 32);
        shaped.then(|| Self(value.to_owned()))
    }

    /// What the server stores in the token's place.
    pub fn hash(&self) -> TokenHash {
        let digest = Sha256::digest(self.0.as_bytes());
        let mut hash = [0; 32];
        hash.copy_from_slice(&digest);
        TokenHash(hash)
    }

    /// The `Set-Cookie` value that hands this token to the browser for `lifetime`.
    pub fn set_cookie(&self, lifetime: Duration, secure: bool) -> String {
        cookie(&self.0, lifetime.as_secs(), secure)
    }
}

/// The `Set-Cookie` value that makes the browser forget its session.
pub fn clear_cookie(secure: bool) -> String {
    cookie("", 0, secure)
}

/// Whether the request came over TLS (as the connection or a trusted proxy says).
pub fn over_tls(req: &HttpRequest) -> bool {
    req.connection_info().scheme() == "https"
}

fn cookie(value: &str, max_age: u64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE_NAME}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header;
    use actix_web::test::TestRequest;

    #[test]
    fn a_token_round_trips_through_the_cookie_header() {
        let token = SessionToken::generate();
        let req = TestRequest::default()
            .insert_header((header::COOKIE, format!("a=b; {COOKIE_NAME}={}", token.0)))
            .to_http_request();
        let read = SessionToken::from_request(&req).unwrap();
        assert_eq!(read.hash(), token.hash());
        assert_ne!(SessionToken::generate().hash(), token.hash());
    }

    #[test]
    fn malformed_tokens_are_ignored() {
        for value in ["", "short", &"!".repeat(43)] {
            let req = TestRequest::default()
                .insert_header((header::COOKIE, format!("{COOKIE_NAME}={value}")))
                .to_http_request();
            assert!(SessionToken::from_request(&req).is_none(), "{value:?}");
        }
    }

    #[test]
    fn the_cookie_is_http_only_lax_and_secure_over_tls_only() {
        let token = SessionToken::generate();
        let plain = token.set_cookie(Duration::from_secs(60), false);
        assert!(plain.contains("HttpOnly") && plain.contains("SameSite=Lax"));
        assert!(plain.contains("Max-Age=60") && !plain.contains("Secure"));
        assert!(token
            .set_cookie(Duration::from_secs(60), true)
            .ends_with("; Secure"));
        assert!(clear_cookie(false).contains("Max-Age=0"));
    }
}
