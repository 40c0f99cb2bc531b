//! Who may read what: the app's answer, asked by the event stream at open, at replay and at
//! every delivery.
//!
//! nudge knows topics and principals (opaque names the app gives), not users or groups. An app
//! with something private implements [`Audience`]: [`Audience::identify`] says who opens a
//! stream (from its cookies), [`Audience::may_read`] whether that principal may read a topic
//! now. [`Audience::readers`] is asked once per published event, in commit order, and its
//! answer (anyone, or a snapshot of who) is what delivery goes by, however late a thread gets
//! to it; both are on hot paths, so an app answers from memory.
//!
//! When access narrows, the app's answer changes first, then [`crate::Hub::revoke`] ends the
//! topic on that principal's open streams with a `forbidden` frame. To keep that in commit
//! order on every node, a write logs the change with a note ([`crate::store::sqlite::WriteTx::changed_with_note`], [`crate::store::postgres::log_change`])
//! and the app's [`Audience::committed`] reads the note where every node sees it: after the
//! commit, before that commit's events are published.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::time::Instant;

use crate::error::ApiError;
use crate::store::LoggedEvent;

/// What a stream request carries that could say who is asking.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    /// The raw values of the request's `Cookie` headers.
    pub cookies: Vec<String>,
}

impl Credentials {
    /// What `req` carries: its `Cookie` headers.
    pub fn from_request(req: &actix_web::HttpRequest) -> Self {
        Self {
            cookies: req
                .headers()
                .get_all(actix_web::http::header::COOKIE)
                .filter_map(|v| v.to_str().ok())
                .map(str::to_owned)
                .collect(),
        }
    }

    /// The value of the cookie `name`, if the request has one (quotes trimmed).
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies
            .iter()
            .flat_map(|value| value.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(n, _)| *n == name)
            .map(|(_, value)| value.trim_matches('"'))
    }
}

/// A session's key as the app names it (e.g. a hash of its token: never the secret itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionKey(pub [u8; 32]);

/// The session a stream was opened with: the stream ends when it ends or expires.
#[derive(Debug, Clone, Copy)]
pub struct StreamSession {
    /// The key [`crate::Hub::end_session`] names.
    pub key: SessionKey,
    /// When the session expires; the stream ends then.
    pub expires_at: Instant,
}

/// Who a stream is for, as the app identified them.
#[derive(Debug, Clone, Default)]
pub struct Viewer {
    /// The principal (`None`: anonymous).
    pub principal: Option<Arc<str>>,
    /// The session the stream was opened with, if any.
    pub session: Option<StreamSession>,
}

impl Viewer {
    /// A principal with no session to end with.
    pub fn signed_in(principal: &str) -> Self {
        Self {
            principal: Some(Arc::from(principal)),
            session: None,
        }
    }
}

/// A yes or no for a principal (`None`: anonymous).
pub type Allow = Arc<dyn Fn(Option<&str>) -> bool + Send + Sync>;

/// Who may read a topic, as of one moment.
#[derive(Clone)]
pub enum Readers {
    /// Anyone, signed in or not.
    Anyone,
    /// Those this says yes to.
    Only(Allow),
}

impl Readers {
    /// Those `allow` says yes to.
    pub fn only(allow: impl Fn(Option<&str>) -> bool + Send + Sync + 'static) -> Self {
        Self::Only(Arc::new(allow))
    }

    /// Whether `principal` is among them.
    pub fn allow(&self, principal: Option<&str>) -> bool {
        match self {
            Self::Anyone => true,
            Self::Only(allow) => allow(principal),
        }
    }
}

impl std::fmt::Debug for Readers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Anyone => "Anyone",
            Self::Only(_) => "Only(..)",
        })
    }
}

/// The refusal of a topic someone may not read: 401 when anonymous (signing in may help),
/// 403 otherwise.
pub fn refusal(principal: Option<&str>) -> ApiError {
    use actix_web::http::StatusCode;
    match principal {
        None => ApiError::client(StatusCode::UNAUTHORIZED, "not_signed_in", "sign in first"),
        Some(_) => ApiError::client(
            StatusCode::FORBIDDEN,
            "forbidden",
            "you may not read one of these topics",
        ),
    }
}

/// A principal who may no longer read a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    /// The principal.
    pub principal: String,
    /// The topic.
    pub topic: String,
}

/// The app's rules for reading. Every method has a default: an app that implements none lets
/// anyone read everything.
///
/// ```
/// use nudge::{ApiError, Audience, Credentials, Readers, Viewer};
///
/// /// `private/{name}` is for `{name}` alone; the principal is the `user` cookie (a real app
/// /// would look a session up).
/// struct PerUser;
///
/// #[async_trait::async_trait]
/// impl Audience for PerUser {
///     async fn identify(&self, credentials: &Credentials) -> Result<Viewer, ApiError> {
///         Ok(match credentials.cookie("user") {
///             Some(name) => Viewer::signed_in(name),
///             None => Viewer::default(),
///         })
///     }
///     fn readers(&self, topic: &str) -> Readers {
///         match topic.strip_prefix("private/") {
///             Some(owner) => {
///                 let owner = owner.to_owned();
///                 Readers::only(move |principal| principal == Some(owner.as_str()))
///             }
///             None => Readers::Anyone,
///         }
///     }
/// }
/// ```
#[async_trait]
pub trait Audience: Send + Sync + 'static {
    /// Who is opening a stream. An error refuses the stream with it (e.g. a 503 when the
    /// session store cannot be reached); unknown or expired credentials are anonymous.
    async fn identify(&self, credentials: &Credentials) -> Result<Viewer, ApiError> {
        let _ = credentials;
        Ok(Viewer::default())
    }

    /// Who may read `topic` now: asked once per published event, in commit order (after
    /// [`Audience::committed`] saw the events before it), and delivery goes by this answer.
    /// [`Readers::Anyone`] costs nothing per stream; `Only` is asked once per matching stream,
    /// so it should hold what it needs (e.g. a copy of a small member list).
    fn readers(&self, topic: &str) -> Readers {
        let _ = topic;
        Readers::Anyone
    }

    /// Whether `principal` (`None`: anonymous) may read `topic` now (asked when a stream
    /// opens and for each event it replays); by default what [`Audience::readers`] says.
    fn may_read(&self, principal: Option<&str>, topic: &str) -> bool {
        self.readers(topic).allow(principal)
    }

    /// Whether the session `key` has ended (asked on PostgreSQL after a node's listening
    /// connection was down, when it may have missed an ended session's notification).
    async fn session_ended(&self, key: &SessionKey) -> bool {
        let _ = key;
        false
    }

    /// A committed event, on every node, in commit order, before it is published: the place to
    /// apply a logged access change (its [`LoggedEvent::note`]) to the app's view. The
    /// revocations returned are applied to the open streams ([`crate::Hub::revoke`]) before the
    /// event goes out.
    fn committed(&self, event: &LoggedEvent) -> Vec<Revocation> {
        let _ = event;
        Vec::new()
    }
}

/// The audience of an app with nothing private.
#[derive(Debug, Clone, Copy, Default)]
pub struct Everyone;

impl Audience for Everyone {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cookie_is_found_among_several_headers_and_pairs() {
        let credentials = Credentials {
            cookies: vec!["a=1; b=2".into(), "session=\"xyz\"".into()],
        };
        assert_eq!(credentials.cookie("b"), Some("2"));
        assert_eq!(credentials.cookie("session"), Some("xyz"));
        assert_eq!(credentials.cookie("c"), None);
    }
}
