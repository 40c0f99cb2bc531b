//! Property tests of JSON route tables: any JSON is a table or an error, never a panic; every
//! bad route of a table is reported, each as it would be alone; and a valid table, written as
//! the documented JSON, routes every request to the first route that declares it.

use proptest::prelude::*;
// Named, so that it is not mistaken for the SW's own `Strategy` that `super::*` brings in.
use proptest::strategy::Strategy;
use serde_json::{json, Map, Value};

use super::*;
use crate::precache::Entry;
use crate::router::RequestInfo;

const CASES: u32 = 256;

const OWN: &str = "https://app.example";

fn manifest() -> Manifest {
    Manifest::new(vec![Entry {
        url: "/".into(),
        revision: "1".into(),
    }])
}

/// Parses and builds a table; the error of either step as text.
fn build(value: Value) -> Result<Table, String> {
    let spec: TableSpec = serde_json::from_value(value).map_err(|e| e.to_string())?;
    spec.build(manifest()).map_err(|e| e.0)
}

/// Strings a careless table might hold: paths, near-paths, reserved names, odd text.
fn odd_text() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "",
            "/",
            ":",
            "/:",
            "/a/:",
            "/a/:b",
            "*",
            "GET",
            "get",
            "GE T",
            "pass",
            PREFIX,
            "nudge-precache-x",
            PRIVATE_CACHE,
            "https://cdn.example",
            "HTTPS://cdn.example",
            "cdn.example",
            "https://",
            "://x",
            "https://a/b",
        ])
        .prop_map(str::to_owned),
        "/[a-z:/]{0,10}",
        "\\PC{0,12}",
    ]
}

/// Numbers at the edges of what a field of type `u32` holds (`0`, past `i32::MAX`), or of
/// `u64` when `wide`: in range, so that a table's values are wrong only in meaning.
fn odd_number(wide: bool) -> impl Strategy<Value = Value> {
    let max = if wide { u64::MAX } else { u64::from(u32::MAX) };
    prop_oneof![
        prop::sample::select(vec![0, 1, 2_147_483_647, 2_147_483_648, max]).prop_map(Value::from),
        any::<u32>().prop_map(Value::from),
    ]
}

/// Adds `key: value` when the value is there.
fn put(object: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(value) = value {
        object.insert(key.to_owned(), value);
    }
}

/// A route of the right shape whose values may be wrong: zero or several of `exact`,
/// `prefix`, `pattern`; odd origins, methods and caches; options given to strategies that
/// refuse them; limits of 0 or past `i32::MAX`.
fn odd_route(name: impl Strategy<Value = Option<String>>) -> impl Strategy<Value = Value> {
    let text = || prop::option::of(odd_text());
    let number = |wide| prop::option::of(odd_number(wide));
    let matcher = (text(), text(), text(), text()).prop_map(|(exact, prefix, pattern, origin)| {
        let mut object = Map::new();
        put(&mut object, "exact", exact.map(Value::from));
        put(&mut object, "prefix", prefix.map(Value::from));
        put(&mut object, "pattern", pattern.map(Value::from));
        put(&mut object, "origin", origin.map(Value::from));
        Value::Object(object)
    });
    let expiration = prop::option::of((number(false), number(true), number(true)).prop_map(
        |(entries, age, bytes)| {
            let mut object = Map::new();
            put(&mut object, "maxEntries", entries);
            put(&mut object, "maxAgeSeconds", age);
            put(&mut object, "maxBytes", bytes);
            Value::Object(object)
        },
    ));
    let strategy = (
        prop::sample::select(STRATEGIES.to_vec()),
        text(),
        number(false),
        expiration,
    )
        .prop_map(|(strategy, cache, timeout, expiration)| {
            let mut object = Map::new();
            object.insert("name".into(), strategy.into());
            put(&mut object, "cache", cache.map(Value::from));
            put(&mut object, "networkTimeoutMs", timeout);
            put(&mut object, "expiration", expiration);
            Value::Object(object)
        });
    (name, text(), matcher, strategy).prop_map(|(name, method, matcher, strategy)| {
        let mut object = Map::new();
        put(&mut object, "name", name.map(Value::from));
        put(&mut object, "method", method.map(Value::from));
        object.insert("match".into(), matcher);
        object.insert("strategy".into(), strategy);
        Value::Object(object)
    })
}

const STRATEGIES: [&str; 6] = [
    "network-first",
    "cache-first",
    "stale-while-revalidate",
    "cache-only",
    "network-only",
    "pass",
];

/// The keys a table uses, so that arbitrary JSON often gets past the first one.
const KEYS: [&str; 17] = [
    "routes",
    "navigationFallback",
    "precache",
    "name",
    "method",
    "match",
    "strategy",
    "exact",
    "prefix",
    "pattern",
    "origin",
    "cache",
    "networkTimeoutMs",
    "expiration",
    "maxEntries",
    "maxAgeSeconds",
    "maxBytes",
];

/// Any JSON, its object keys mostly those of a table and its strings mostly table-like.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        odd_number(true),
        odd_text().prop_map(Value::from),
        prop::sample::select(STRATEGIES.to_vec()).prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let key = prop_oneof![
            4 => prop::sample::select(KEYS.to_vec()).prop_map(str::to_owned),
            1 => "\\PC{0,8}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::vec((key, inner), 0..6)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
        ]
    })
}

/// A declared route of a valid table, kept beside its JSON to know what it takes.
#[derive(Debug, Clone)]
struct Declared {
    path: PathSpec,
    /// `None`: the SW's own origin; `Some("*")`: any.
    origin: Option<&'static str>,
    /// As written; `None` is `GET` (every method for `pass`).
    method: Option<String>,
    strategy: &'static str,
}

#[derive(Debug, Clone)]
enum PathSpec {
    Exact(String),
    Prefix(String),
    /// Segments after the leading `/` (at least one): `Ok(literal)` or `Err(name)`.
    Pattern(Vec<Result<String, String>>),
}

/// Paths from a small alphabet, so that routes overlap and order matters.
fn small_path() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(vec!["a", "b", ":x", ""]), 0..4)
        .prop_map(|segments| format!("/{}", segments.join("/")))
}

fn declared() -> impl Strategy<Value = Declared> {
    let segment = prop_oneof![
        prop::sample::select(vec!["a", "b", ""]).prop_map(|s| Ok(s.to_owned())),
        "[a-z]{1,3}".prop_map(Err),
    ];
    let path = prop_oneof![
        small_path().prop_map(PathSpec::Exact),
        small_path().prop_map(PathSpec::Prefix),
        prop::collection::vec(segment, 1..4).prop_map(PathSpec::Pattern),
    ];
    let origin = prop::sample::select(vec![
        None,
        Some("*"),
        Some(OWN),
        Some("https://cdn.example"),
    ]);
    let method = prop::option::of(prop::sample::select(vec!["*", "GET", "get", "post", "Put"]));
    let strategy = prop::sample::select(STRATEGIES.to_vec());
    (path, origin, method, strategy).prop_map(|(path, origin, method, strategy)| Declared {
        path,
        origin,
        method: method.map(str::to_owned),
        strategy,
    })
}

impl Declared {
    /// The route as the documented JSON, named `r{index}`.
    fn json(&self, index: usize) -> Value {
        let mut matcher = Map::new();
        let (kind, path) = match &self.path {
            PathSpec::Exact(path) => ("exact", path.clone()),
            PathSpec::Prefix(path) => ("prefix", path.clone()),
            PathSpec::Pattern(segments) => ("pattern", pattern_text(segments)),
        };
        matcher.insert(kind.into(), path.into());
        put(&mut matcher, "origin", self.origin.map(Value::from));
        let mut strategy = json!({ "name": self.strategy });
        if !matches!(self.strategy, "network-only" | "pass") {
            strategy["cache"] = json!("c");
        }
        if self.strategy == "network-first" {
            strategy["networkTimeoutMs"] = json!(3000);
        }
        let mut route =
            json!({ "name": format!("r{index}"), "match": matcher, "strategy": strategy });
        if let Some(method) = &self.method {
            route["method"] = json!(method);
        }
        route
    }

    /// Whether the route takes the request, worked out from the declaration alone.
    fn takes(&self, request: &RequestInfo<'_>) -> bool {
        let method = match self.method.as_deref() {
            None if self.strategy == "pass" => true,
            None => request.method == "GET",
            Some("*") => true,
            Some(method) => request.method == method.to_ascii_uppercase(),
        };
        let origin = match self.origin {
            None => request.same_origin,
            Some("*") => true,
            Some(origin) => request.origin == origin,
        };
        let path = match &self.path {
            PathSpec::Exact(path) => request.path == path,
            PathSpec::Prefix(path) => request.path.starts_with(path.as_str()),
            PathSpec::Pattern(segments) => {
                let parts: Vec<&str> = request.path.split('/').collect();
                parts.len() == segments.len() + 1
                    && parts[0].is_empty()
                    && segments
                        .iter()
                        .zip(&parts[1..])
                        .all(|(segment, part)| match segment {
                            Ok(literal) => literal == part,
                            Err(_) => !part.is_empty(),
                        })
            }
        };
        method && origin && path
    }

    /// A path this route takes, with `fill` in its named segments and after its prefix.
    fn a_path(&self, fill: &str) -> String {
        match &self.path {
            PathSpec::Exact(path) => path.clone(),
            PathSpec::Prefix(path) => format!("{path}{fill}"),
            PathSpec::Pattern(segments) => segments
                .iter()
                .map(|segment| match segment {
                    Ok(literal) => format!("/{literal}"),
                    Err(_) => format!("/{fill}"),
                })
                .collect(),
        }
    }
}

fn pattern_text(segments: &[Result<String, String>]) -> String {
    segments
        .iter()
        .map(|segment| match segment {
            Ok(literal) => format!("/{literal}"),
            Err(name) => format!("/:{name}"),
        })
        .collect()
}

/// Path text rich in what URL parsing changes: dot segments, `%2e`, spaces, non-ASCII
/// letters, `?`, `#`, `\`, and what Chromium encodes beyond the URL Standard (`^`, `|`).
fn path_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        prop::sample::select(vec![
            ".", "..", "%2e", "%2E", ".x", "a", "%20", "%", " ", "\u{e9}", "?", "#", "\\", "^",
            "|", "{", "'", "~", ":", "\t",
        ])
        .prop_map(str::to_owned),
        "\\PC{1,2}",
    ];
    let segment = prop::collection::vec(piece, 0..3).prop_map(|pieces| pieces.concat());
    prop::collection::vec(segment, 1..4).prop_map(|segments| format!("/{}", segments.join("/")))
}

/// True when the browser sends `path` as it is written: the URL Standard's parser leaves it
/// unchanged, and it holds neither of the two characters Chromium encodes beyond it.
fn sent_unchanged(path: &str) -> bool {
    let parsed = url::Url::parse(&format!("{OWN}{path}"));
    parsed.is_ok_and(|url| url.path() == path) && !path.contains(['^', '|'])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// A table takes a path exactly when the browser can send a request with that path (a
    /// prefix: that path and more; a pattern: with its named segments filled): any other
    /// route would silently never match.
    #[test]
    fn a_table_path_is_one_the_browser_sends(path in path_text()) {
        let takes = |kind: &str| {
            let route = json!({ "match": { kind: path }, "strategy": { "name": "pass" } });
            build(json!({ "routes": [route] })).is_ok()
        };
        prop_assert_eq!(takes("exact"), sent_unchanged(&path));
        prop_assert_eq!(takes("prefix"), sent_unchanged(&format!("{path}x")));
        if !path.split('/').any(|segment| segment == ":") {
            let filled: Vec<&str> = path
                .split('/')
                .map(|segment| if segment.starts_with(':') { "x" } else { segment })
                .collect();
            prop_assert_eq!(takes("pattern"), sent_unchanged(&filled.join("/")));
        }
    }

    /// Any JSON is a table or an error: parsing and building never panic.
    #[test]
    fn any_json_is_a_table_or_an_error(value in any_json(), routes in prop::collection::vec(any_json(), 0..4)) {
        let _ = build(value);
        let _ = build(json!({ "routes": routes }));
    }

    /// Routes of the right shape with odd values parse, and building them never panics: the
    /// table builds exactly when each route builds alone, and its error reports every bad
    /// route under its own index with the problem it has alone.
    #[test]
    fn every_bad_route_is_reported_as_it_is_alone(
        routes in prop::collection::vec(odd_route(prop::option::of("[a-z]{1,6}")), 0..6),
        fallback in prop::option::of(odd_text()),
        precache in prop::option::of(any::<bool>()),
        odd_names in prop::collection::vec(odd_route(prop::option::of(odd_text())), 0..3),
    ) {
        let mut table = json!({ "routes": odd_names });
        put(table.as_object_mut().unwrap(), "navigationFallback", fallback.map(Value::from));
        put(table.as_object_mut().unwrap(), "precache", precache.map(Value::from));
        let _ = build(table);

        let mut alone = Vec::new();
        for route in &routes {
            let result = build(json!({ "routes": [route], "precache": false }));
            alone.push(result.err());
        }
        match build(json!({ "routes": routes, "precache": false })) {
            Ok(_) => prop_assert!(alone.iter().all(Option::is_none), "{:?}", alone),
            Err(whole) => {
                prop_assert!(alone.iter().any(Option::is_some), "{}", whole);
                for (index, problem) in alone.iter().enumerate() {
                    let label = format!("routes[{index}]");
                    match problem {
                        Some(problem) => {
                            let here = problem.replacen("routes[0]", &label, 1);
                            prop_assert!(whole.contains(&here), "{:?} not in {}", here, whole);
                        }
                        None => {
                            let named = [format!("{label}:"), format!("{label} (")];
                            prop_assert!(!named.iter().any(|l| whole.contains(l.as_str())), "{}", whole);
                        }
                    }
                }
            }
        }
    }

    /// A valid table written as the documented JSON builds, and every request made for one of
    /// its routes goes to the first route that declares it (or to none).
    #[test]
    fn a_valid_table_routes_as_declared(
        routes in prop::collection::vec(declared(), 1..6),
        fill in prop::sample::select(vec!["a", "b", "zz", ":x"]),
        method in prop::sample::select(vec!["GET", "POST", "PUT", "DELETE"]),
        origin in prop::sample::select(vec![OWN, "https://cdn.example", "http://other.example"]),
    ) {
        let json: Vec<Value> = routes.iter().enumerate().map(|(i, route)| route.json(i)).collect();
        let table = build(json!({ "routes": json, "precache": false }))
            .map_err(TestCaseError::fail)?;
        for route in &routes {
            let path = route.a_path(fill);
            let request = RequestInfo {
                method,
                path: &path,
                origin,
                same_origin: origin == OWN,
                navigate: false,
                only_if_cached: false,
            };
            let expected = routes.iter().position(|r| r.takes(&request)).map(|i| format!("r{i}"));
            let found = table.router.find(&request).map(|r| r.name.to_string());
            prop_assert_eq!(found, expected, "{} {} {}", method, origin, path);
        }
    }
}
