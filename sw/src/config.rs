//! nudge's route table: which strategy answers which request.
//!
//! The order is the policy: exceptions first (the event stream, ephemeral presence, reads
//! that ask for the cache only), broad rules last (anything under `/api/`). Anything no route
//! takes, and every method but GET, is left to the browser, except posting a message: that
//! goes through the outbox, so a message typed offline goes up once, even with no tab open.

use std::rc::Rc;

use crate::expiration::Expiration;
use crate::notify::{Notice, Notices};
use crate::outbox::Outbox;
use crate::precache::Manifest;
use crate::router::{Matcher, Pattern, Route, Router};
use crate::store::Store;
use crate::strategy::{CacheFirst, CacheOnly, NetworkFirst, NetworkOnly, Strategy};

/// The runtime cache for API reads. Versioned by hand: bump it only when the format of stored
/// entries changes, since activating a new shell must not throw away offline data.
pub const API_CACHE: &str = "nudge-api-v1";

/// The limits of the API cache (and of the private cache it spills into). Generous, because
/// this data is what the page shows offline: a chat's rooms and recent pages are small JSON
/// bodies, so the byte budget is what bounds a runaway client, the count bounds the cost of a
/// `keys()` per put, and a month covers a long holiday.
pub const API_EXPIRATION: Expiration = Expiration {
    max_entries: Some(500),
    max_age_ms: Some(30 * 24 * 60 * 60 * 1000),
    max_bytes: Some(20 * 1024 * 1024),
};

/// The API store: [`API_CACHE`] under [`API_EXPIRATION`], what the `api` route writes (and so
/// what a nudge for an API URL refreshes).
pub fn api_store() -> Store {
    Store::new(API_CACHE).expiration(API_EXPIRATION)
}

/// The path of the app shell, served for every navigation when offline.
pub const SHELL: &str = "/";

/// How long a message typed offline may wait in the outbox before it is dropped (and the page
/// told): a week, past which a chat message is more surprising than useful.
pub const OUTBOX_MAX_AGE_SECONDS: u64 = 7 * 24 * 60 * 60;

/// A route's handler.
pub type Handler = Rc<dyn Strategy>;

/// The routes for a SW whose precache is `manifest`.
pub fn router(manifest: &Manifest) -> Router<Handler> {
    let precache = manifest.cache_name();
    let api = || Matcher::Prefix("/api/".to_owned());
    let same_origin = |matcher: Matcher| Matcher::All(vec![Matcher::SameOrigin, matcher]);
    Router::<Handler>::new()
        // A ServiceWorker cannot hold a stream; the page holds it, untouched.
        .route(Route::pass(
            "event-stream",
            same_origin(Matcher::Exact("/api/events".to_owned())),
        ))
        .route(Route::new(
            "post-message",
            Some("POST".into()),
            same_origin(Matcher::Pattern(Pattern::parse(
                "/api/rooms/:room/messages",
            ))),
            Some(handler(
                Outbox::new().max_age_seconds(OUTBOX_MAX_AGE_SECONDS),
            )),
        ))
        .route(Route::get(
            "navigation",
            Matcher::Navigate,
            handler(NetworkFirst::new(&precache).read_only().fallback_to(SHELL)),
        ))
        // Ephemeral: the server says no-store anyway; the route table says it too.
        .route(Route::get(
            "presence",
            same_origin(Matcher::Pattern(Pattern::parse(
                "/api/rooms/:room/presence",
            ))),
            handler(NetworkOnly),
        ))
        // The page re-renders after an `updated` message without touching the network.
        .route(Route::get(
            "cached-read",
            Matcher::All(vec![Matcher::SameOrigin, Matcher::OnlyIfCached, api()]),
            handler(CacheOnly::new(API_CACHE)),
        ))
        .route(Route::get(
            "shell",
            same_origin(Matcher::OneOf(manifest.paths())),
            handler(CacheFirst::new(&precache).read_only()),
        ))
        .route(Route::get(
            "api",
            same_origin(api()),
            handler(
                NetworkFirst::new(API_CACHE)
                    .expiration(API_EXPIRATION)
                    .miss_as_503(),
            ),
        ))
}

/// How a push's notification is worded: for a room's `recent`, the room and how many of its
/// messages the refreshed copy has that the one before lacked; a click opens the room.
pub fn notices() -> Notices {
    let recent = Matcher::All(vec![
        Matcher::SameOrigin,
        Matcher::Pattern(Pattern::parse("/api/rooms/:room/recent")),
    ]);
    let room = Notice {
        title: "#{room}".to_owned(),
        body: "New messages: {count}".to_owned(),
        count: Some("messages".to_owned()),
        key: "id".to_owned(),
        open: "/#{room}".to_owned(),
    };
    Notices::new()
        .rule(recent, room)
        .fallback(Notice::titled("Watercooler has something new"))
}

fn handler(strategy: impl Strategy + 'static) -> Handler {
    Rc::new(strategy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::precache::Entry;
    use crate::router::RequestInfo;

    fn get(path: &str) -> RequestInfo<'_> {
        RequestInfo {
            method: "GET",
            path,
            origin: "https://example.org",
            same_origin: true,
            navigate: false,
            only_if_cached: false,
        }
    }

    fn route_of(request: RequestInfo<'_>) -> Option<String> {
        let manifest = Manifest::new(vec![
            Entry {
                url: "/".into(),
                revision: "1".into(),
            },
            Entry {
                url: "/app.js".into(),
                revision: "2".into(),
            },
        ]);
        let router = router(&manifest);
        let route = router.find(&request)?;
        // A pass route is a decision not to intercept, reported like no route at all.
        route.handler.as_ref().map(|_| route.name.to_string())
    }

    #[test]
    fn nudge_routes_each_kind_of_request() {
        assert_eq!(
            route_of(RequestInfo {
                navigate: true,
                ..get("/rooms/x")
            }),
            Some("navigation".into())
        );
        assert_eq!(
            route_of(RequestInfo {
                navigate: true,
                ..get("/")
            }),
            Some("navigation".into())
        );
        assert_eq!(route_of(get("/")), Some("shell".into()));
        assert_eq!(route_of(get("/app.js")), Some("shell".into()));
        assert_eq!(
            route_of(get("/api/rooms/general/recent")),
            Some("api".into())
        );
        assert_eq!(
            route_of(get("/api/rooms/general/presence")),
            Some("presence".into())
        );
        let cached = RequestInfo {
            only_if_cached: true,
            ..get("/api/rooms/general/recent")
        };
        assert_eq!(route_of(cached), Some("cached-read".into()));
    }

    #[test]
    fn nudge_leaves_streams_writes_and_strangers_alone() {
        assert_eq!(route_of(get("/api/events")), None);
        let post = RequestInfo {
            method: "POST",
            ..get("/api/rooms/general/messages")
        };
        assert_eq!(route_of(post), Some("post-message".into()));
        let other_write = RequestInfo {
            method: "POST",
            ..get("/api/rooms")
        };
        assert_eq!(route_of(other_write), None);
        assert_eq!(route_of(get("/favicon.ico")), None);
        assert_eq!(
            route_of(RequestInfo {
                same_origin: false,
                ..get("/api/rooms")
            }),
            None
        );
    }
}
