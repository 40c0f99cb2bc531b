//! The messages a page and the SW exchange (serde-wasm-bindgen, plain JS objects).

use serde::{Deserialize, Serialize};

/// A message from a page.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Incoming {
    /// The server said `url` changed; its new version carries `etag`.
    Nudge {
        /// The changed resource, usually a path on the SW's origin.
        url: String,
        /// The new version's ETag; without it, the URL is always revalidated.
        #[serde(default)]
        etag: Option<String>,
    },
    /// The user accepted "a new version is ready": activate the waiting SW now.
    SkipWaiting,
}

/// A message to the pages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Outgoing {
    /// The cache holds a new version of `url`: re-render it from the cache.
    Updated {
        /// The URL as the nudge named it.
        url: String,
    },
    /// The reply to a nudge, sent to its sender once the work is done.
    Nudged {
        /// The URL as the nudge named it.
        url: String,
        /// Whether the cache changed.
        updated: bool,
    },
}
