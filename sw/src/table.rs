//! Route tables given as JSON, so that another app can use the compiled SW unchanged.
//!
//! nudge's own table is Rust ([`crate::config`]). Another app sets `self.NUDGE_ROUTES` before
//! the wasm starts (the loader imports `?routes=/path.js` for it) to an object, or a JSON
//! string, of this shape:
//!
//! ```json
//! {
//!   "routes": [
//!     { "match": { "exact": "/api/events" }, "strategy": { "name": "pass" } },
//!     { "name": "api", "method": "GET",
//!       "match": { "prefix": "/api/" },
//!       "strategy": { "name": "network-first", "cache": "api-v1", "networkTimeoutMs": 3000,
//!                     "expiration": { "maxEntries": 200, "maxAgeSeconds": 86400,
//!                                     "maxBytes": 5000000 } } }
//!   ],
//!   "navigationFallback": "/",
//!   "precache": true
//! }
//! ```
//!
//! - `routes`, in order, first match wins. `match` holds exactly one of `exact` (the path),
//!   `prefix` (the path starts with it) or `pattern` (`/rooms/:room/recent`, whole paths),
//!   and optionally `origin`: absent means the SW's own origin, `"*"` any origin, otherwise
//!   exactly that origin (`https://cdn.example`). `method` is `GET` unless given (`"*"`: any);
//!   a `pass` route takes every method unless given one. Paths are written as the browser
//!   gives a request's (`URL.pathname`): percent-encoded, without `.` or `..` segments; a path
//!   written otherwise could never match, so it is refused.
//! - `strategy.name`: `network-first`, `cache-first`, `stale-while-revalidate`,
//!   `cache-only`, `network-only`, or `pass` (leave the request to the browser: how an
//!   exception is carved out of a broader route below it). `cache` names the Cache Storage
//!   cache, required by the strategies that use one and refused by the others;
//!   `networkTimeoutMs` is for `network-first` only; `expiration` (any of `maxEntries`,
//!   `maxAgeSeconds`, `maxBytes`) for the strategies that write their cache. A GET with
//!   `cache: "only-if-cached"` that such a route takes is answered from its cache alone (as
//!   nudge's own table does for the page's reads after `updated`).
//! - `outbox` (see [`crate::outbox`]): for writes; `method` is `POST` unless given, and must
//!   be one of `POST`, `PUT`, `PATCH`, `DELETE`. Online the write goes up with an
//!   `Idempotency-Key` (the page's, or one the SW adds); when the network fails or the server
//!   answers 503 it is queued in IndexedDB and answered 202 (`Nudge-Outbox-Entry: <id>`), then
//!   replayed in order, exactly once. `maxAgeSeconds` (outbox only): older entries are dropped
//!   and reported instead of sent.
//! - `precache` (default `true`): files of the build-time manifest (`self.NUDGE_PRECACHE`) are
//!   installed and answered cache-first, before the declared routes.
//! - `navigationFallback` (default none): navigations go network-first and, offline, get this
//!   precached page; it comes before everything else and needs `precache`.
//! - `notify` (on a route that writes a cache, and at the top as the default): how the
//!   notification after a Web Push naming one of its URLs is worded ([`crate::notify`]):
//!   `{"title": "#{room}", "body": "{count} new", "count": "messages", "key": "id",
//!   "open": "/#{room}"}`. `title` is required; `{name}` placeholders take the route pattern's
//!   `:name` values, `{count}` (only with `count`, the JSON field of the cached body holding a
//!   list; `key`, default `id`, tells its items apart) how many items are new since the copy
//!   cached before; `open` (default `/`) is the page a click opens. Without a top-level
//!   `notify`, a URL no route words gets "<host> has something new".
//!
//! Unknown fields are errors, not ignored, because a misspelt `networkTimeotMs` that silently
//! did nothing would be found only offline, by users. Every problem is collected into one
//! [`TableError`]; the worker then logs it with `console.error` and intercepts nothing, since
//! routing half a table could serve stale data the app never asked to cache.
//!
//! Deserialisation uses serde (serde-wasm-bindgen in the SW): it runs once per start, and
//! serde's messages (`unknown variant "netwrok-first", expected one of …`) say what is wrong.

use std::borrow::Cow;
use std::fmt;
use std::rc::Rc;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;

use crate::config::Handler;
use crate::expiration::Expiration;
use crate::notify::{Notice, Notices};
use crate::outbox::Outbox;
use crate::precache::{Manifest, PREFIX};
use crate::router::{Matcher, Pattern, Route, Router};
use crate::store::PRIVATE_CACHE;
use crate::strategy::{
    CacheFirst, CacheOnly, NetworkFirst, NetworkOnly, StaleWhileRevalidate, Strategy,
};

/// What is wrong with a route table, every problem on one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableError(pub String);

impl fmt::Display for TableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TableError {}

/// A whole table, as declared.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TableSpec {
    /// The routes, in order.
    pub routes: Routes,
    /// The precached page that offline navigations get.
    #[serde(default)]
    pub navigation_fallback: Option<String>,
    /// Whether the build-time manifest is installed and served.
    #[serde(default = "yes")]
    pub precache: bool,
    /// The notification for pushed URLs that no route's `notify` words.
    #[serde(default)]
    pub notify: Option<NotifySpec>,
}

fn yes() -> bool {
    true
}

/// The routes, deserialised one by one so that an error names the route it is about.
#[derive(Debug)]
pub struct Routes(pub Vec<RouteSpec>);

impl<'de> Deserialize<'de> for Routes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Each;
        impl<'de> Visitor<'de> for Each {
            type Value = Routes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of routes")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Routes, A::Error> {
                let mut routes = Vec::new();
                loop {
                    match seq.next_element::<RouteSpec>() {
                        Ok(Some(route)) => routes.push(route),
                        Ok(None) => return Ok(Routes(routes)),
                        Err(error) => {
                            let at = routes.len();
                            let error = plain(&error);
                            return Err(de::Error::custom(format_args!("routes[{at}]: {error}")));
                        }
                    }
                }
            }
        }
        deserializer.deserialize_seq(Each)
    }
}

/// One route, as declared.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSpec {
    /// A name for logs; `routes[i]` when absent.
    pub name: Option<String>,
    /// The method, `GET` unless given; `*` for any.
    pub method: Option<String>,
    /// What the route takes.
    #[serde(rename = "match")]
    pub matcher: MatchSpec,
    /// How it answers.
    pub strategy: StrategySpec,
    /// How a push's notification for its URLs is worded.
    #[serde(default)]
    pub notify: Option<NotifySpec>,
}

/// A notification's wording, as declared (see [`Notice`]).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifySpec {
    /// The title template.
    pub title: String,
    /// The body template.
    #[serde(default)]
    pub body: Option<String>,
    /// The list field whose new items `{count}` counts.
    #[serde(default)]
    pub count: Option<String>,
    /// The field that tells the list's items apart (`id`).
    #[serde(default)]
    pub key: Option<String>,
    /// The page a click opens (`/`).
    #[serde(default)]
    pub open: Option<String>,
}

impl NotifySpec {
    /// The notice, its templates checked against the pattern's names `params`.
    fn notice(self, params: &[String]) -> Result<Notice, String> {
        if self.key.is_some() && self.count.is_none() {
            return Err("`notify.key` needs `notify.count`".into());
        }
        let open = self.open.unwrap_or_else(|| "/".to_owned());
        if !open.starts_with('/') || open.starts_with("//") {
            return Err(format!(
                "`notify.open` \"{open}\" must be a path on this origin"
            ));
        }
        let notice = Notice {
            title: self.title,
            body: self.body.unwrap_or_default(),
            count: self.count,
            key: self.key.unwrap_or_else(|| "id".to_owned()),
            open,
        };
        let unknown = notice.unknown_placeholders(params);
        if !unknown.is_empty() {
            return Err(format!(
                "`notify` names {{{}}}, which neither the pattern nor `count` gives",
                unknown.join("}, {")
            ));
        }
        Ok(notice)
    }
}

/// A route's condition: one of `exact`, `prefix`, `pattern`, and an optional `origin`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchSpec {
    /// Exactly this path.
    pub exact: Option<String>,
    /// This path prefix.
    pub prefix: Option<String>,
    /// A path pattern with `:name` segments.
    pub pattern: Option<String>,
    /// The origin; the SW's own when absent, any for `*`.
    pub origin: Option<String>,
}

/// A route's strategy and its options.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StrategySpec {
    /// Which strategy.
    pub name: StrategyName,
    /// The cache it reads and writes.
    pub cache: Option<String>,
    /// `network-first` only: serve the stored copy after this long without an answer.
    pub network_timeout_ms: Option<u32>,
    /// Limits on the cache it writes.
    pub expiration: Option<ExpirationSpec>,
    /// `outbox` only: queued writes older than this are dropped and reported, not sent.
    pub max_age_seconds: Option<u64>,
}

/// The strategies a table may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StrategyName {
    /// [`NetworkFirst`].
    NetworkFirst,
    /// [`CacheFirst`].
    CacheFirst,
    /// [`StaleWhileRevalidate`].
    StaleWhileRevalidate,
    /// [`CacheOnly`].
    CacheOnly,
    /// [`NetworkOnly`].
    NetworkOnly,
    /// Not intercepted.
    Pass,
    /// [`Outbox`]: writes sent now, or queued and replayed exactly once.
    Outbox,
}

impl StrategyName {
    fn as_str(self) -> &'static str {
        match self {
            StrategyName::NetworkFirst => "network-first",
            StrategyName::CacheFirst => "cache-first",
            StrategyName::StaleWhileRevalidate => "stale-while-revalidate",
            StrategyName::CacheOnly => "cache-only",
            StrategyName::NetworkOnly => "network-only",
            StrategyName::Pass => "pass",
            StrategyName::Outbox => "outbox",
        }
    }

    fn uses_cache(self) -> bool {
        !matches!(
            self,
            StrategyName::NetworkOnly | StrategyName::Pass | StrategyName::Outbox
        )
    }

    fn writes_cache(self) -> bool {
        self.uses_cache() && self != StrategyName::CacheOnly
    }
}

/// Limits on a cache, in the units a person writes them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExpirationSpec {
    /// At most this many entries.
    pub max_entries: Option<u32>,
    /// Entries older than this go.
    pub max_age_seconds: Option<u64>,
    /// At most this many body bytes.
    pub max_bytes: Option<u64>,
}

/// A table turned into what the worker runs: the routes and the manifest to install.
pub struct Table {
    /// The routes, navigation fallback and precache first.
    pub router: Router<Handler>,
    /// The build-time manifest, or an empty one when the table turns precaching off.
    pub manifest: Manifest,
    /// Whether a route has the `outbox` strategy.
    pub outbox: bool,
    /// Whether navigations go network-first (`navigationFallback`): navigation preload then.
    pub navigation_preload: bool,
    /// How a push's notification is worded.
    pub notices: Notices,
}

/// Reads a table given to the SW: an object or a JSON string (serde-wasm-bindgen).
pub fn from_js(value: &wasm_bindgen::JsValue) -> Result<TableSpec, TableError> {
    let parsed;
    let value = match value.as_string() {
        Some(json) => {
            parsed = js_sys::JSON::parse(&json).map_err(|error| {
                TableError(format!("not JSON: {}", crate::error::SwError::from(error)))
            })?;
            &parsed
        }
        None => value,
    };
    // serde would say "invalid type: unit value, expected struct TableSpec" for a null.
    if !value.is_object() || js_sys::Array::is_array(value) {
        let kind = if value.is_null() {
            "null".to_owned()
        } else if js_sys::Array::is_array(value) {
            "an array".to_owned()
        } else {
            value.js_typeof().as_string().unwrap_or_default()
        };
        return Err(TableError(format!(
            "the table must be an object with `routes` (or its JSON text), not {kind}"
        )));
    }
    serde_wasm_bindgen::from_value(value.clone()).map_err(|error| TableError(plain(&error)))
}

/// An error's message without the `Error: ` that serde-wasm-bindgen's errors (JS `Error`s)
/// put in front of it, which would otherwise repeat at every level of nesting.
fn plain(error: &impl fmt::Display) -> String {
    let text = error.to_string();
    match text.strip_prefix("Error: ") {
        Some(message) => message.to_owned(),
        None => text,
    }
}

impl TableSpec {
    /// Checks every route and builds the router over `manifest`; all problems in one error.
    pub fn build(self, manifest: Manifest) -> Result<Table, TableError> {
        let mut problems = Vec::new();
        let manifest = if self.precache {
            manifest
        } else {
            Manifest::default()
        };
        let precache_name = manifest.cache_name();
        let mut router = Router::new();
        let navigation_preload = self.navigation_fallback.is_some();
        let outbox = self
            .routes
            .0
            .iter()
            .any(|route| route.strategy.name == StrategyName::Outbox);
        if let Some(url) = &self.navigation_fallback {
            if !self.precache {
                problems.push(format!(
                    "navigationFallback \"{url}\" needs \"precache\": true (it is served from the precache)"
                ));
            } else if !manifest.paths().contains(url) {
                problems.push(format!(
                    "navigationFallback \"{url}\" is not in the precache manifest (self.NUDGE_PRECACHE)"
                ));
            }
            let strategy = NetworkFirst::new(&precache_name)
                .read_only()
                .fallback_to(url);
            router = router.route(Route::get(
                "navigation",
                Matcher::Navigate,
                handler(strategy),
            ));
        }
        if !manifest.entries().is_empty() {
            let precached =
                Matcher::All(vec![Matcher::SameOrigin, Matcher::OneOf(manifest.paths())]);
            let strategy = CacheFirst::new(&precache_name).read_only();
            router = router.route(Route::get("precache", precached, handler(strategy)));
        }
        let mut notices = Notices::new();
        if let Some(notify) = self.notify {
            match notify.notice(&[]) {
                Ok(notice) => notices = notices.fallback(notice),
                Err(problem) => problems.push(problem),
            }
        }
        for (index, mut spec) in self.routes.0.into_iter().enumerate() {
            let label = match &spec.name {
                Some(name) => format!("routes[{index}] (\"{name}\")"),
                None => format!("routes[{index}]"),
            };
            let notify = spec.notify.take();
            let params = spec.matcher.params();
            let writes = spec.strategy.name.writes_cache();
            match spec.routes(index) {
                Ok(routes) => {
                    let matcher = routes.last().map(|route| route.matcher.clone());
                    match (notify, matcher) {
                        (Some(_), _) if !writes => problems.push(format!(
                            "{label}: `notify` is for routes that keep a cache (a push refreshes it)"
                        )),
                        (Some(notify), Some(matcher)) => match notify.notice(&params) {
                            Ok(notice) => notices = notices.rule(matcher, notice),
                            Err(problem) => problems.push(format!("{label}: {problem}")),
                        },
                        _ => {}
                    }
                    for route in routes {
                        router = router.route(route);
                    }
                }
                Err(problem) => problems.push(format!("{label}: {problem}")),
            }
        }
        if problems.is_empty() {
            Ok(Table {
                router,
                manifest,
                outbox,
                navigation_preload,
                notices,
            })
        } else {
            Err(TableError(problems.join("; ")))
        }
    }
}

impl RouteSpec {
    /// The route, preceded by its cached read when its strategy writes a cache: a GET it takes
    /// with `cache: "only-if-cached"` (what the page's `nudge.fetch(url, {cached: true})` sends
    /// after the SW said `updated`) is answered from that cache alone. Without it, the strategy
    /// would pass that request to the browser's HTTP cache, which keeps an older copy.
    fn routes(self, index: usize) -> Result<Vec<Route<Handler>>, String> {
        let cached_read = match (&self.strategy.cache, self.strategy.name.writes_cache()) {
            (Some(cache), true) => Some(CacheOnly::new(cache)),
            _ => None,
        };
        let route = self.route(index)?;
        match cached_read {
            Some(cache_only) if route.method.as_deref() == Some("GET") => {
                let matcher = Matcher::All(vec![Matcher::OnlyIfCached, route.matcher.clone()]);
                let name = format!("{} (cached read)", route.name);
                Ok(vec![Route::get(name, matcher, handler(cache_only)), route])
            }
            _ => Ok(vec![route]),
        }
    }

    fn route(self, index: usize) -> Result<Route<Handler>, String> {
        let matcher = self.matcher.matcher()?;
        let name: Cow<'static, str> = match self.name {
            Some(name) => name.into(),
            None => format!("routes[{index}]").into(),
        };
        let strategy = self.strategy.name;
        let method = match self.method.as_deref() {
            None if strategy == StrategyName::Pass => None,
            None if strategy == StrategyName::Outbox => Some("POST".into()),
            None => Some("GET".into()),
            Some("*") => None,
            Some(method) if is_token(method) => Some(method.to_ascii_uppercase().into()),
            Some(method) => return Err(format!("method \"{method}\" is not an HTTP method")),
        };
        let writes = ["POST", "PUT", "PATCH", "DELETE"];
        if strategy == StrategyName::Outbox
            && !method.as_deref().is_some_and(|m| writes.contains(&m))
        {
            return Err(format!(
                "strategy outbox is for one write method (POST, PUT, PATCH or DELETE), not {}",
                self.method.as_deref().unwrap_or("GET")
            ));
        }
        let handler = self.strategy.handler()?;
        Ok(Route::new(name, method, matcher, handler))
    }
}

fn is_token(method: &str) -> bool {
    !method.is_empty() && method.bytes().all(|b| b.is_ascii_alphabetic())
}

impl MatchSpec {
    /// The names of the pattern's `:name` segments (none for `exact` and `prefix`).
    fn params(&self) -> Vec<String> {
        let pattern = self.pattern.as_deref().unwrap_or_default();
        pattern
            .split('/')
            .filter_map(|segment| segment.strip_prefix(':'))
            .map(str::to_owned)
            .collect()
    }

    fn matcher(self) -> Result<Matcher, String> {
        let path = match (self.exact, self.prefix, self.pattern) {
            (Some(path), None, None) => Matcher::Exact(checked_path("exact", path)?),
            (None, Some(path), None) => Matcher::Prefix(checked_path("prefix", path)?),
            (None, None, Some(path)) => {
                let path = checked_path("pattern", path)?;
                if path.split('/').any(|segment| segment == ":") {
                    return Err(format!("pattern \"{path}\" has a `:` without a name"));
                }
                Matcher::Pattern(Pattern::parse(&path))
            }
            _ => return Err("`match` needs exactly one of `exact`, `prefix`, `pattern`".into()),
        };
        let origin = match self.origin.as_deref() {
            None => Matcher::SameOrigin,
            Some("*") => return Ok(path),
            Some(origin) if is_origin(origin) => Matcher::Origin(origin.to_owned()),
            Some(origin) => {
                return Err(format!(
                "origin \"{origin}\" is not an origin such as \"https://cdn.example\" (or \"*\")"
            ))
            }
        };
        Ok(Matcher::All(vec![origin, path]))
    }
}

fn checked_path(kind: &str, path: String) -> Result<String, String> {
    if !path.starts_with('/') {
        Err(format!(
            "{kind} \"{path}\" must be a path starting with `/`"
        ))
    } else if !as_browsers_send(kind, &path) {
        Err(format!(
            "{kind} \"{path}\" is not a path as browsers send it: write spaces and non-ASCII \
             characters percent-encoded, and no `.` or `..` segments, `?`, `#`, `\\`, `^`, `|`"
        ))
    } else {
        Ok(path)
    }
}

/// True when `path` is written the way the browser gives a request's path (`URL.pathname`,
/// percent-encoded and without dot segments), which is what routes compare with: a path
/// written otherwise would silently never match. A prefix may end inside a segment
/// (`/.well-known` starts with `/.`), and a pattern's `:name` segments are names, not text.
fn as_browsers_send(kind: &str, path: &str) -> bool {
    let segments: Vec<&str> = path.split('/').collect();
    let whole = match kind {
        "prefix" => segments.len() - 1,
        _ => segments.len(),
    };
    segments.iter().enumerate().all(|(at, segment)| {
        let named = kind == "pattern" && segment.starts_with(':');
        let dot = at < whole && is_dot(segment);
        named || !(dot || segment.chars().any(changed_by_browsers))
    })
}

/// Characters the browser percent-encodes in a path (the URL Standard's path set, and `^`
/// and `|`, which Chromium encodes too), turns into `/` (`\`) or ends the path at (`?`, `#`).
fn changed_by_browsers(c: char) -> bool {
    !c.is_ascii_graphic() || "\"#<>?\\^`{|}".contains(c)
}

/// A `.` or `..` segment, which the URL parser removes; `%2e` is a dot there too.
fn is_dot(segment: &str) -> bool {
    let dots = segment.to_ascii_lowercase().replace("%2e", ".");
    dots == "." || dots == ".."
}

/// `scheme://host[:port]`, nothing after: what `URL.origin` gives, so comparison is exact.
fn is_origin(origin: &str) -> bool {
    match origin.split_once("://") {
        Some((scheme, authority)) => {
            !scheme.is_empty()
                && !authority.is_empty()
                && !authority.contains(['/', '?', '#'])
                && origin == origin.to_ascii_lowercase()
        }
        None => false,
    }
}

impl StrategySpec {
    /// The handler (`None` for `pass`), or what is wrong with the options.
    fn handler(self) -> Result<Option<Handler>, String> {
        let name = self.name;
        let strategy = name.as_str();
        let cache = match (name.uses_cache(), self.cache) {
            (true, None) => return Err(format!("strategy {strategy} needs a `cache` name")),
            (true, Some(cache)) => Some(checked_cache(cache)?),
            (false, Some(_)) => return Err(format!("strategy {strategy} uses no `cache`")),
            (false, None) => None,
        };
        if self.network_timeout_ms.is_some() && name != StrategyName::NetworkFirst {
            return Err(format!(
                "`networkTimeoutMs` is for network-first only, not {strategy}"
            ));
        }
        let expiration = match self.expiration {
            Some(_) if !name.writes_cache() => {
                return Err(format!(
                    "`expiration` is for strategies that write a cache, not {strategy}"
                ))
            }
            Some(spec) => spec.expiration()?,
            None => Expiration::NONE,
        };
        if self.max_age_seconds.is_some() && name != StrategyName::Outbox {
            return Err(format!(
                "`maxAgeSeconds` is for outbox only, not {strategy} (caches: `expiration`)"
            ));
        }
        let cache = cache.as_deref().unwrap_or_default();
        Ok(match name {
            StrategyName::NetworkFirst => {
                let mut strategy = NetworkFirst::new(cache).expiration(expiration);
                if let Some(ms) = self.network_timeout_ms {
                    let ms = i32::try_from(ms)
                        .ok()
                        .filter(|ms| *ms > 0)
                        .ok_or("`networkTimeoutMs` must be between 1 and 2147483647")?;
                    strategy = strategy.network_timeout(ms);
                }
                Some(handler(strategy))
            }
            StrategyName::CacheFirst => {
                Some(handler(CacheFirst::new(cache).expiration(expiration)))
            }
            StrategyName::StaleWhileRevalidate => Some(handler(
                StaleWhileRevalidate::new(cache).expiration(expiration),
            )),
            StrategyName::CacheOnly => Some(handler(CacheOnly::new(cache))),
            StrategyName::NetworkOnly => Some(handler(NetworkOnly)),
            StrategyName::Pass => None,
            StrategyName::Outbox => Some(handler(match self.max_age_seconds {
                Some(0) => return Err("`maxAgeSeconds` must be at least 1".into()),
                Some(seconds) => Outbox::new().max_age_seconds(seconds),
                None => Outbox::new(),
            })),
        })
    }
}

/// A cache name that cannot collide with the SW's own bookkeeping: `activate` deletes other
/// precaches by prefix, and sign-out deletes the private cache.
fn checked_cache(cache: String) -> Result<String, String> {
    if cache.is_empty() {
        Err("`cache` must not be empty".into())
    } else if cache.starts_with(PREFIX) || cache == PRIVATE_CACHE {
        Err(format!(
            "cache \"{cache}\" is reserved (the SW's precache and private cache)"
        ))
    } else {
        Ok(cache)
    }
}

impl ExpirationSpec {
    fn expiration(self) -> Result<Expiration, String> {
        let positive = |field: &str, value: Option<u64>| match value {
            Some(0) => Err(format!("`expiration.{field}` must be at least 1")),
            _ => Ok(value),
        };
        let max_entries = positive("maxEntries", self.max_entries.map(u64::from))?;
        let max_age = positive("maxAgeSeconds", self.max_age_seconds)?;
        Ok(Expiration {
            max_entries: max_entries.map(|n| n as usize),
            max_age_ms: max_age.map(|seconds| seconds.saturating_mul(1000)),
            max_bytes: positive("maxBytes", self.max_bytes)?,
        })
    }
}

fn handler(strategy: impl Strategy + 'static) -> Handler {
    Rc::new(strategy)
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod props;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::precache::Entry;
    use crate::router::RequestInfo;

    fn manifest() -> Manifest {
        Manifest::new(vec![Entry {
            url: "/".into(),
            revision: "1".into(),
        }])
    }

    fn build(json: &str) -> Result<Table, TableError> {
        let spec: TableSpec =
            serde_json::from_str(json).map_err(|error| TableError(error.to_string()))?;
        spec.build(manifest())
    }

    fn error(json: &str) -> String {
        match build(json) {
            Ok(_) => panic!("accepted: {json}"),
            Err(error) => error.0,
        }
    }

    fn route(table: &Table, method: &str, path: &str, origin: &str) -> Option<String> {
        route_of(table, method, path, origin, false)
    }

    fn route_of(
        table: &Table,
        method: &str,
        path: &str,
        origin: &str,
        only_if_cached: bool,
    ) -> Option<String> {
        let request = RequestInfo {
            method,
            path,
            origin,
            same_origin: origin == "https://app.example",
            navigate: false,
            only_if_cached,
        };
        let route = table.router.find(&request)?;
        route.handler.as_ref().map(|_| route.name.to_string())
    }

    const TABLE: &str = r#"{
        "routes": [
            {"match": {"exact": "/api/events"}, "strategy": {"name": "pass"}},
            {"name": "cdn", "match": {"prefix": "/lib/", "origin": "https://cdn.example"},
             "strategy": {"name": "cache-first", "cache": "cdn",
                          "expiration": {"maxEntries": 10, "maxAgeSeconds": 60}}},
            {"name": "recent", "match": {"pattern": "/api/rooms/:room/recent"},
             "strategy": {"name": "stale-while-revalidate", "cache": "api"}},
            {"name": "api", "match": {"prefix": "/api/"},
             "strategy": {"name": "network-first", "cache": "api", "networkTimeoutMs": 3000}},
            {"name": "upload", "method": "post", "match": {"exact": "/upload"},
             "strategy": {"name": "network-only"}}
        ],
        "navigationFallback": "/"
    }"#;

    #[test]
    fn a_table_routes_as_declared() {
        let table = build(TABLE).unwrap();
        let own = "https://app.example";
        assert_eq!(route(&table, "GET", "/", own).as_deref(), Some("precache"));
        assert_eq!(route(&table, "GET", "/api/events", own), None);
        assert_eq!(route(&table, "POST", "/api/events", own), None);
        let recent = route(&table, "GET", "/api/rooms/a/recent", own);
        assert_eq!(recent.as_deref(), Some("recent"));
        assert_eq!(
            route(&table, "GET", "/api/rooms", own).as_deref(),
            Some("api")
        );
        assert_eq!(route(&table, "POST", "/api/rooms", own), None, "GET only");
        let cdn = route(&table, "GET", "/lib/x.js", "https://cdn.example");
        assert_eq!(cdn.as_deref(), Some("cdn"));
        assert_eq!(route(&table, "GET", "/lib/x.js", own), None);
        assert_eq!(
            route(&table, "GET", "/api/rooms", "https://cdn.example"),
            None
        );
        assert_eq!(
            route(&table, "POST", "/upload", own).as_deref(),
            Some("upload")
        );
        assert_eq!(table.manifest, manifest());
    }

    #[test]
    fn a_read_asking_only_for_the_cache_gets_the_routes_cache_alone() {
        let table = build(TABLE).unwrap();
        let own = "https://app.example";
        let cached = |method, path, origin| route_of(&table, method, path, origin, true);
        assert_eq!(
            cached("GET", "/api/rooms", own).as_deref(),
            Some("api (cached read)")
        );
        assert_eq!(
            cached("GET", "/api/rooms/a/recent", own).as_deref(),
            Some("recent (cached read)")
        );
        let cdn = cached("GET", "/lib/x.js", "https://cdn.example");
        assert_eq!(cdn.as_deref(), Some("cdn (cached read)"));
        // Routes that keep no cache are as declared.
        assert_eq!(cached("GET", "/api/events", own), None);
        assert_eq!(cached("POST", "/upload", own).as_deref(), Some("upload"));
        // A nudge refreshes through the route an ordinary GET takes.
        assert_eq!(
            route(&table, "GET", "/api/rooms", own).as_deref(),
            Some("api")
        );
    }

    #[test]
    fn an_outbox_route_takes_writes_only() {
        let table = build(
            r#"{"routes": [
                {"name": "post", "match": {"pattern": "/api/rooms/:room/messages"},
                 "strategy": {"name": "outbox", "maxAgeSeconds": 86400}},
                {"name": "put", "method": "put", "match": {"prefix": "/api/todos/"},
                 "strategy": {"name": "outbox"}}
            ]}"#,
        )
        .unwrap();
        assert!(table.outbox);
        assert!(!table.navigation_preload, "no navigation route, no preload");
        let own = "https://app.example";
        let path = "/api/rooms/a/messages";
        assert_eq!(route(&table, "POST", path, own).as_deref(), Some("post"));
        assert_eq!(route(&table, "GET", path, own), None, "POST unless given");
        assert_eq!(
            route(&table, "PUT", "/api/todos/1", own).as_deref(),
            Some("put")
        );
        assert!(!build(r#"{"routes": []}"#).unwrap().outbox);
        let e = error(
            r#"{"routes": [
                {"match": {"exact": "/a"}, "method": "GET", "strategy": {"name": "outbox"}},
                {"match": {"exact": "/a"}, "method": "*", "strategy": {"name": "outbox"}},
                {"match": {"exact": "/a"}, "strategy": {"name": "outbox", "cache": "c"}},
                {"match": {"exact": "/a"}, "strategy": {"name": "outbox", "maxAgeSeconds": 0}},
                {"match": {"exact": "/a"}, "strategy": {"name": "network-only", "maxAgeSeconds": 5}}
            ]}"#,
        );
        for expected in [
            "routes[0]: strategy outbox is for one write method (POST, PUT, PATCH or DELETE), not GET",
            "routes[1]: strategy outbox is for one write method (POST, PUT, PATCH or DELETE), not *",
            "routes[2]: strategy outbox uses no `cache`",
            "routes[3]: `maxAgeSeconds` must be at least 1",
            "routes[4]: `maxAgeSeconds` is for outbox only",
        ] {
            assert!(e.contains(expected), "missing {expected:?} in {e}");
        }
    }

    #[test]
    fn precache_off_empties_the_manifest_and_its_route() {
        let table = build(r#"{"routes": [], "precache": false}"#).unwrap();
        assert!(table.manifest.entries().is_empty());
        assert_eq!(route(&table, "GET", "/", "https://app.example"), None);
    }

    #[test]
    fn shape_errors_name_the_route_and_the_field() {
        let e = error(
            r#"{"routes": [{"match": {"exact": "/"}, "strategy": {"name": "netwrok-first"}}]}"#,
        );
        assert!(
            e.starts_with("routes[0]: unknown variant `netwrok-first`"),
            "{e}"
        );
        let e = error(
            r#"{"routes": [{"match": {"exact": "/"}, "strategy": {"name": "pass"}},
                {"match": {"exact": "/"}, "strategy": {"name": "pass", "timeout": 1}}]}"#,
        );
        assert!(e.starts_with("routes[1]: unknown field `timeout`"), "{e}");
        let e = error(r#"{"route": []}"#);
        assert!(e.contains("unknown field `route`"), "{e}");
        let e = error(r#"{"routes": [{"strategy": {"name": "pass"}}]}"#);
        assert!(e.contains("missing field `match`"), "{e}");
    }

    #[test]
    fn meaning_errors_are_all_reported_together() {
        let e = error(
            r#"{"routes": [
                {"name": "a", "match": {"prefix": "api/"}, "strategy": {"name": "pass"}},
                {"match": {"exact": "/", "prefix": "/"}, "strategy": {"name": "pass"}},
                {"match": {"exact": "/x"}, "strategy": {"name": "network-first"}},
                {"match": {"exact": "/x"}, "strategy": {"name": "network-only", "cache": "c"}},
                {"match": {"exact": "/x"}, "strategy": {"name": "cache-first", "cache": "c", "networkTimeoutMs": 5}},
                {"match": {"exact": "/x"}, "strategy": {"name": "cache-only", "cache": "c", "expiration": {}}},
                {"match": {"exact": "/x"}, "strategy": {"name": "cache-first", "cache": "nudge-precache-1"}},
                {"match": {"exact": "/x", "origin": "cdn.example"}, "strategy": {"name": "pass"}},
                {"match": {"exact": "/x"}, "method": "GE T", "strategy": {"name": "pass"}},
                {"match": {"exact": "/x"}, "strategy": {"name": "cache-first", "cache": "c", "expiration": {"maxEntries": 0}}}
            ], "navigationFallback": "/offline.html"}"#,
        );
        for expected in [
            "navigationFallback \"/offline.html\" is not in the precache manifest",
            "routes[0] (\"a\"): prefix \"api/\" must be a path starting with `/`",
            "routes[1]: `match` needs exactly one of",
            "routes[2]: strategy network-first needs a `cache` name",
            "routes[3]: strategy network-only uses no `cache`",
            "routes[4]: `networkTimeoutMs` is for network-first only",
            "routes[5]: `expiration` is for strategies that write a cache",
            "routes[6]: cache \"nudge-precache-1\" is reserved",
            "routes[7]: origin \"cdn.example\" is not an origin",
            "routes[8]: method \"GE T\" is not an HTTP method",
            "routes[9]: `expiration.maxEntries` must be at least 1",
        ] {
            assert!(e.contains(expected), "missing {expected:?} in {e}");
        }
    }

    #[test]
    fn notify_words_the_routes_urls_and_the_rest() {
        let table = build(
            r#"{"routes": [
                {"match": {"pattern": "/api/lists/:list"},
                 "strategy": {"name": "network-first", "cache": "api"},
                 "notify": {"title": "{list}", "body": "{count} new", "count": "items",
                            "open": "/#{list}"}},
                {"match": {"prefix": "/api/"}, "strategy": {"name": "network-first", "cache": "api"}}
            ], "notify": {"title": "Todos"}}"#,
        )
        .unwrap();
        let origin = "https://app.example";
        let (notice, params) = table.notices.find("/api/lists/home", origin).unwrap();
        assert_eq!(notice.count.as_deref(), Some("items"));
        assert_eq!(notice.key, "id");
        assert_eq!(params, vec![("list".to_owned(), "home".to_owned())]);
        // The cached-read route in front of it does not hide the rule.
        assert!(table.notices.find("/api/other", origin).is_none());
        assert_eq!(table.notices.default_for("app.example").title, "Todos");
    }

    #[test]
    fn notify_mistakes_are_reported_with_the_route() {
        let e = error(
            r#"{"routes": [
                {"match": {"pattern": "/a/:x"}, "strategy": {"name": "network-only"},
                 "notify": {"title": "x"}},
                {"match": {"pattern": "/b/:x"}, "strategy": {"name": "cache-first", "cache": "c"},
                 "notify": {"title": "{y}", "body": "{count}"}},
                {"match": {"exact": "/c"}, "strategy": {"name": "cache-first", "cache": "c"},
                 "notify": {"title": "c", "open": "https://evil.example/"}},
                {"match": {"exact": "/d"}, "strategy": {"name": "cache-first", "cache": "c"},
                 "notify": {"title": "d", "key": "id"}}
            ], "notify": {"title": "{x}"}}"#,
        );
        for expected in [
            "routes[0]: `notify` is for routes that keep a cache",
            "routes[1]: `notify` names {count}, {y}, which neither",
            "routes[2]: `notify.open` \"https://evil.example/\" must be a path",
            "routes[3]: `notify.key` needs `notify.count`",
            "`notify` names {x}",
        ] {
            assert!(e.contains(expected), "missing {expected:?} in {e}");
        }
        let e = error(
            r#"{"routes": [{"match": {"exact": "/e"}, "strategy": {"name": "cache-first", "cache": "c"},
                 "notify": {"title": "e", "icon": "/e.png"}}]}"#,
        );
        assert!(e.contains("routes[0]: unknown field `icon`"), "{e}");
    }

    fn one(kind: &str, path: &str) -> Result<Table, TableError> {
        let route = serde_json::json!({"match": {kind: path}, "strategy": {"name": "pass"}});
        build(&serde_json::json!({"routes": [route]}).to_string())
    }

    /// Routes compare with `URL.pathname`, which the browser has percent-encoded and cleared
    /// of dot segments: a path written otherwise could never match, so it is refused. The
    /// refused cases are what headless Chromium's `new URL(…).pathname` changes.
    #[test]
    fn paths_the_browser_would_never_send_are_refused() {
        for (kind, path) in [
            ("exact", "/a b"),
            ("exact", "/caf\u{e9}"),
            ("exact", "/a/./b"),
            ("prefix", "/a/../"),
            ("exact", "/a/%2E%2e/b"),
            ("exact", "/a/."),
            ("exact", "/a?b"),
            ("exact", "/a#b"),
            ("prefix", "/a\\b"),
            ("exact", "/a^b"),
            ("exact", "/a|b"),
            ("pattern", "/{x}/:y"),
            ("pattern", "/:y/a\tb"),
        ] {
            let e = match one(kind, path) {
                Ok(_) => panic!("accepted {kind} {path:?}"),
                Err(error) => error.0,
            };
            assert!(e.contains("is not a path as browsers send it"), "{e}");
        }
        for (kind, path) in [
            ("exact", "/a/.x"),
            ("exact", "/a%20b/%7e"),
            ("exact", "/a'b(c)*!$&+,;=@:~"),
            ("prefix", "/.well-known"),
            ("prefix", "/a/."),
            ("pattern", "/:caf\u{e9}/x"),
        ] {
            assert!(one(kind, path).is_ok(), "refused {kind} {path:?}");
        }
    }
}
