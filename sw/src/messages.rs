//! The messages a page and the SW exchange, as plain JS objects with a `type`.
//!
//! Read and written by hand with `Reflect` rather than with serde: serde's tagged-enum
//! machinery and its error messages (which format floats) cost the wasm more than all of the
//! SW's caching logic, for five small message shapes.

use js_sys::{Object, Reflect};
use wasm_bindgen::JsValue;

use crate::outbox::Principal;

/// A message from a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// `{type: "nudge", url, etag?}`: the server said `url` changed; its new version carries
    /// `etag`.
    Nudge {
        /// The changed resource, usually a path on the SW's origin.
        url: String,
        /// The new version's ETag; without it, the URL is always revalidated.
        etag: Option<String>,
    },
    /// `{type: "skip-waiting"}`: the user accepted "a new version is ready".
    SkipWaiting,
    /// `{type: "sign-out"}`: the user signed out; forget every private response.
    SignOut,
    /// `{type: "outbox", op, principal?}`: about the outbox (see [`crate::outbox`]); a
    /// `principal` (a string, or `null` for nobody in particular) names who writes now.
    Outbox {
        /// What the page asks for.
        op: OutboxOp,
        /// The page's principal, when the message names one.
        principal: Option<Principal>,
    },
}

/// What a page asks of the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxOp {
    /// The network seems back: send what waits.
    Flush,
    /// Send nothing until `release` (a sign-out is being decided).
    Hold,
    /// Send again.
    Release,
    /// Reply with the principal's waiting entries.
    List,
}

impl OutboxOp {
    fn parse(op: &str) -> Option<OutboxOp> {
        Some(match op {
            "flush" => OutboxOp::Flush,
            "hold" => OutboxOp::Hold,
            "release" => OutboxOp::Release,
            "list" => OutboxOp::List,
            _ => return None,
        })
    }
}

impl Incoming {
    /// The message a page posted, or `None` for anything else (other code may post too).
    pub fn from_js(value: &JsValue) -> Option<Incoming> {
        let field = |name: &str| {
            let value = Reflect::get(value, &JsValue::from_str(name)).ok()?;
            value.as_string()
        };
        if !value.is_object() {
            return None;
        }
        if field("type").as_deref() == Some("outbox") {
            let op = OutboxOp::parse(&field("op")?)?;
            let principal = Reflect::has(value, &JsValue::from_str("principal"))
                .unwrap_or(false)
                .then(|| {
                    Principal::from_js(
                        &Reflect::get(value, &"principal".into()).unwrap_or_default(),
                    )
                });
            return Some(Incoming::Outbox { op, principal });
        }
        Incoming::parse(&field("type")?, field("url"), field("etag"))
    }

    /// The message of type `kind` with these fields, if they make one.
    pub fn parse(kind: &str, url: Option<String>, etag: Option<String>) -> Option<Incoming> {
        match kind {
            "nudge" => Some(Incoming::Nudge { url: url?, etag }),
            "skip-waiting" => Some(Incoming::SkipWaiting),
            "sign-out" => Some(Incoming::SignOut),
            _ => None,
        }
    }
}

/// A message to the pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outgoing {
    /// `{type: "updated", url}`: the cache holds a new version of `url`; re-render from it.
    Updated {
        /// The URL as the nudge named it.
        url: String,
    },
    /// `{type: "nudged", url, updated}`: the reply to a nudge, once the work is done.
    Nudged {
        /// The URL as the nudge named it.
        url: String,
        /// Whether the cache changed.
        updated: bool,
    },
    /// `{type: "signed-out"}`: the reply to `sign-out`, once the private cache is gone.
    SignedOut,
}

impl Outgoing {
    /// The message as a plain object, ready for `postMessage`.
    pub fn to_js(&self) -> Result<JsValue, JsValue> {
        let object = Object::new();
        let set = |name: &str, value: JsValue| Reflect::set(&object, &name.into(), &value);
        match self {
            Outgoing::Updated { url } => {
                set("type", "updated".into())?;
                set("url", url.into())?;
            }
            Outgoing::Nudged { url, updated } => {
                set("type", "nudged".into())?;
                set("url", url.into())?;
                set("updated", (*updated).into())?;
            }
            Outgoing::SignedOut => {
                set("type", "signed-out".into())?;
            }
        }
        Ok(object.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_type_makes_its_message() {
        assert_eq!(
            Incoming::parse("nudge", Some("/a".into()), None),
            Some(Incoming::Nudge {
                url: "/a".into(),
                etag: None
            })
        );
        assert_eq!(
            Incoming::parse("sign-out", None, None),
            Some(Incoming::SignOut)
        );
        assert_eq!(
            Incoming::parse("skip-waiting", None, None),
            Some(Incoming::SkipWaiting)
        );
    }

    #[test]
    fn unknown_types_and_nudges_without_a_url_are_ignored() {
        assert_eq!(Incoming::parse("nudge", None, Some("\"1\"".into())), None);
        assert_eq!(Incoming::parse("hello", Some("/a".into()), None), None);
    }
}
