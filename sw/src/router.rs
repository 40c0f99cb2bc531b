//! The route table: the first route whose method and matcher accept a request wins.
//!
//! Pure logic over [`RequestInfo`], so matching is tested natively; the wasm side only
//! extracts a `RequestInfo` from a `web_sys::Request`. The decision must be synchronous:
//! `FetchEvent.respondWith` has to be called (or not) before the fetch handler returns.
//! "No route" and a [`Route::pass`] route both mean "do not intercept": the browser then
//! handles the request as if there were no ServiceWorker.

use std::borrow::Cow;
use std::collections::BTreeSet;

/// What the router looks at in a request.
#[derive(Debug, Clone, Copy)]
pub struct RequestInfo<'a> {
    /// The method, upper case as `Request.method` gives it.
    pub method: &'a str,
    /// The URL's path, without query or fragment.
    pub path: &'a str,
    /// The URL's origin, such as `https://example.org`.
    pub origin: &'a str,
    /// True when the URL has the SW's own origin.
    pub same_origin: bool,
    /// True for `Request.mode == "navigate"`.
    pub navigate: bool,
    /// True for `Request.cache == "only-if-cached"`.
    pub only_if_cached: bool,
}

/// A condition on a request.
#[derive(Debug, Clone)]
pub enum Matcher {
    /// A navigation (a page load).
    Navigate,
    /// A request made with `cache: "only-if-cached"`.
    OnlyIfCached,
    /// A URL with the SW's own origin.
    SameOrigin,
    /// A URL with exactly this origin (`https://cdn.example`), for route tables that reach
    /// beyond the SW's own.
    Origin(String),
    /// Exactly this path.
    Exact(String),
    /// This path or anything below it (`/api/` takes `/api/rooms`).
    Prefix(String),
    /// A path pattern with named segments, such as `/api/rooms/:room/recent`.
    Pattern(Pattern),
    /// One of these paths (the precache manifest).
    OneOf(BTreeSet<String>),
    /// Every one of these conditions.
    All(Vec<Matcher>),
}

impl Matcher {
    /// True when the request satisfies this condition.
    pub fn matches(&self, request: &RequestInfo<'_>) -> bool {
        match self {
            Matcher::Navigate => request.navigate,
            Matcher::OnlyIfCached => request.only_if_cached,
            Matcher::SameOrigin => request.same_origin,
            Matcher::Origin(origin) => request.origin == origin,
            Matcher::Exact(path) => request.path == path,
            Matcher::Prefix(prefix) => request.path.starts_with(prefix.as_str()),
            Matcher::Pattern(pattern) => pattern.captures(request.path).is_some(),
            Matcher::OneOf(paths) => paths.contains(request.path),
            Matcher::All(all) => all.iter().all(|matcher| matcher.matches(request)),
        }
    }
}

/// A path pattern: literal segments and `:name` segments that match any one non-empty segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
}

impl Pattern {
    /// Parses a pattern such as `/api/rooms/:room/recent`.
    pub fn parse(pattern: &str) -> Self {
        let segments = pattern
            .split('/')
            .map(|segment| match segment.strip_prefix(':') {
                Some(name) => Segment::Param(name.to_owned()),
                None => Segment::Literal(segment.to_owned()),
            })
            .collect();
        Pattern { segments }
    }

    /// The named segments' values when `path` matches the whole pattern.
    pub fn captures<'p>(&self, path: &'p str) -> Option<Vec<(&str, &'p str)>> {
        let mut parts = path.split('/');
        let mut captures = Vec::new();
        for segment in &self.segments {
            let part = parts.next()?;
            match segment {
                Segment::Literal(literal) if literal == part => {}
                Segment::Param(name) if !part.is_empty() => captures.push((name.as_str(), part)),
                _ => return None,
            }
        }
        // A pattern matches whole paths only: `/a/:b` does not take `/a/b/c`.
        parts.next().is_none().then_some(captures)
    }
}

/// A matcher, the methods it accepts, and what handles the requests it takes.
#[derive(Debug, Clone)]
pub struct Route<H> {
    /// A name for logs and tests (owned when it comes from a JSON table).
    pub name: Cow<'static, str>,
    /// The method accepted, or `None` for every method.
    pub method: Option<Cow<'static, str>>,
    /// The condition on the request.
    pub matcher: Matcher,
    /// The handler, or `None` for a route that claims requests in order to leave them alone.
    pub handler: Option<H>,
}

impl<H> Route<H> {
    /// A GET route handled by `handler` (most routes are reads).
    pub fn get(name: impl Into<Cow<'static, str>>, matcher: Matcher, handler: H) -> Self {
        Route::new(name, Some("GET".into()), matcher, Some(handler))
    }

    /// A route for `method` (`None`: every method); `handler` `None` makes it a pass route.
    pub fn new(
        name: impl Into<Cow<'static, str>>,
        method: Option<Cow<'static, str>>,
        matcher: Matcher,
        handler: Option<H>,
    ) -> Self {
        Route {
            name: name.into(),
            method,
            matcher,
            handler,
        }
    }

    /// A route, for any method, that stops the search and leaves the request to the browser:
    /// how an exception (the event stream) is carved out of a broader route below it.
    pub fn pass(name: impl Into<Cow<'static, str>>, matcher: Matcher) -> Self {
        Route::new(name, None, matcher, None)
    }

    fn accepts(&self, request: &RequestInfo<'_>) -> bool {
        self.method
            .as_deref()
            .is_none_or(|method| method == request.method)
            && self.matcher.matches(request)
    }
}

/// An ordered list of routes.
#[derive(Debug, Clone)]
pub struct Router<H> {
    routes: Vec<Route<H>>,
}

impl<H> Default for Router<H> {
    fn default() -> Self {
        Router { routes: Vec::new() }
    }
}

impl<H> Router<H> {
    /// An empty router, which intercepts nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a route after the existing ones (it loses to them).
    pub fn route(mut self, route: Route<H>) -> Self {
        self.routes.push(route);
        self
    }

    /// The first route that accepts the request.
    pub fn find(&self, request: &RequestInfo<'_>) -> Option<&Route<H>> {
        self.routes.iter().find(|route| route.accepts(request))
    }

    /// The handler that must answer the request, or `None` when the SW must not intercept it.
    pub fn handler(&self, request: &RequestInfo<'_>) -> Option<&H> {
        self.find(request).and_then(|route| route.handler.as_ref())
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod props;

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn patterns_capture_named_segments_of_whole_paths() {
        let pattern = Pattern::parse("/api/rooms/:room/recent");
        assert_eq!(
            pattern.captures("/api/rooms/general/recent"),
            Some(vec![("room", "general")])
        );
        assert_eq!(pattern.captures("/api/rooms//recent"), None);
        assert_eq!(pattern.captures("/api/rooms/general"), None);
        assert_eq!(pattern.captures("/api/rooms/general/recent/x"), None);
        assert_eq!(pattern.captures("/api/lobby/general/recent"), None);
    }

    #[test]
    fn the_first_matching_route_wins() {
        let router = Router::new()
            .route(Route::get("exact", Matcher::Exact("/api/rooms".into()), 1))
            .route(Route::get("prefix", Matcher::Prefix("/api/".into()), 2))
            .route(Route::get("never", Matcher::Exact("/api/rooms".into()), 3));
        assert_eq!(
            router.find(&get("/api/rooms")).map(|r| r.name.as_ref()),
            Some("exact")
        );
        assert_eq!(router.handler(&get("/api/rooms/x")), Some(&2));
        assert!(router.find(&get("/app.js")).is_none());
    }

    #[test]
    fn a_pass_route_stops_the_search_without_a_handler() {
        let router = Router::new()
            .route(Route::pass("stream", Matcher::Exact("/api/events".into())))
            .route(Route::get("api", Matcher::Prefix("/api/".into()), ()));
        assert_eq!(
            router.find(&get("/api/events")).map(|r| r.name.as_ref()),
            Some("stream")
        );
        assert_eq!(router.handler(&get("/api/events")), None);
        assert_eq!(router.handler(&get("/api/rooms")), Some(&()));
    }

    #[test]
    fn get_routes_refuse_other_methods_and_all_combines_conditions() {
        let api = Matcher::All(vec![Matcher::SameOrigin, Matcher::Prefix("/api/".into())]);
        let router = Router::new().route(Route::get("api", api, ()));
        let post = RequestInfo {
            method: "POST",
            ..get("/api/rooms")
        };
        assert!(router.find(&post).is_none());
        let foreign = RequestInfo {
            same_origin: false,
            ..get("/api/rooms")
        };
        assert!(router.find(&foreign).is_none());
        assert!(router.find(&get("/api/rooms")).is_some());
    }
}
