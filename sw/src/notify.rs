//! What a push's notification says, as the route table words it (pure, tested natively).
//!
//! A push names URLs that changed; the SW refreshes them ([`crate::push`]) and then shows one
//! notification, worded by the [`Notice`] of the first URL that has one: its `title` and `body`
//! are templates whose `{name}` placeholders take the values of the route pattern's `:name`
//! segments, and `{count}` how many items of the freshly cached JSON list (`count` names the
//! field that holds it) were not in the copy cached before (all of them when there was none;
//! at least 1, since the push says something changed even when an open tab's stream refreshed
//! the copy first), added to the count of the notification it replaces (same topic, not yet
//! dismissed). `open` is the page a click on the
//! notification opens. URLs without a notice get the table's default, or "<host> has something
//! new".
//!
//! The words come from the cache, which the SW filled with the person's own credentials: the
//! push itself carries no content, so nothing private passes through the push service.

use std::collections::BTreeSet;

use crate::router::{Matcher, RequestInfo};

/// How to word the notification for a refreshed URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The title template.
    pub title: String,
    /// The body template (may be empty).
    pub body: String,
    /// The field of the cached JSON object holding the list whose new items `{count}` counts.
    pub count: Option<String>,
    /// The field that tells the list's items apart (`id`).
    pub key: String,
    /// The page to open on a click (a template too).
    pub open: String,
}

impl Notice {
    /// A notice with `title` and no body, counting nothing, opening `/`.
    pub fn titled(title: &str) -> Notice {
        Notice {
            title: title.to_owned(),
            body: String::new(),
            count: None,
            key: "id".to_owned(),
            open: "/".to_owned(),
        }
    }

    /// Every placeholder of the templates that neither `params` nor `{count}` (when this notice
    /// counts) would fill: a table naming one is refused, since it would show as `{typo}`.
    pub fn unknown_placeholders(&self, params: &[String]) -> Vec<String> {
        let mut unknown = BTreeSet::new();
        for template in [&self.title, &self.body, &self.open] {
            for name in placeholders(template) {
                let known = params.contains(&name) || (name == "count" && self.count.is_some());
                if !known {
                    unknown.insert(name);
                }
            }
        }
        unknown.into_iter().collect()
    }
}

/// The notices of a table: per route, and the default.
#[derive(Debug, Clone, Default)]
pub struct Notices {
    rules: Vec<(Matcher, Notice)>,
    fallback: Option<Notice>,
}

impl Notices {
    /// No notice but the built-in default.
    pub fn new() -> Notices {
        Notices::default()
    }

    /// URLs the route `matcher` takes are worded by `notice` (the first rule that takes a URL
    /// wins, as with routes).
    pub fn rule(mut self, matcher: Matcher, notice: Notice) -> Notices {
        self.rules.push((matcher, notice));
        self
    }

    /// The notice for URLs no rule takes.
    pub fn fallback(mut self, notice: Notice) -> Notices {
        self.fallback = Some(notice);
        self
    }

    /// The notice for a same-origin GET of `path`, with the pattern's values, if a rule takes it.
    pub fn find(&self, path: &str, origin: &str) -> Option<(&Notice, Vec<(String, String)>)> {
        let request = RequestInfo {
            method: "GET",
            path,
            origin,
            same_origin: true,
            navigate: false,
            only_if_cached: false,
        };
        self.rules
            .iter()
            .find(|(matcher, _)| matcher.matches(&request))
            .map(|(matcher, notice)| (notice, captures(matcher, path)))
    }

    /// The notice for URLs no rule takes: the table's, or "`host` has something new".
    pub fn default_for(&self, host: &str) -> Notice {
        self.fallback
            .clone()
            .unwrap_or_else(|| Notice::titled(&format!("{host} has something new")))
    }
}

/// The values of a matcher's pattern segments for `path` (percent-decoded), if it has a pattern.
pub fn captures(matcher: &Matcher, path: &str) -> Vec<(String, String)> {
    match matcher {
        Matcher::Pattern(pattern) => pattern
            .captures(path)
            .unwrap_or_default()
            .into_iter()
            .map(|(name, value)| (name.to_owned(), percent_decode(value)))
            .collect(),
        Matcher::All(all) => all.iter().flat_map(|m| captures(m, path)).collect(),
        _ => Vec::new(),
    }
}

/// The names of the `{name}` placeholders in `template`.
pub fn placeholders(template: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        match after.find('}') {
            Some(end) => {
                names.push(after[..end].to_owned());
                rest = &after[end + 1..];
            }
            None => break,
        }
    }
    names
}

/// `template` with each `{name}` replaced by its value in `params`, and `{count}` by `count`.
pub fn fill(template: &str, params: &[(String, String)], count: Option<usize>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let Some(end) = after.find('}') else {
            rest = &rest[start..];
            break;
        };
        let name = &after[..end];
        let value = match (name, count) {
            ("count", Some(count)) => Some(count.to_string()),
            _ => params
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone()),
        };
        match value {
            Some(value) => out.push_str(&value),
            None => out.push_str(&rest[start..start + end + 2]),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// How many of `fresh` (the keys of the list now cached) were not in `before` (the keys of the
/// copy cached before the refresh). With no copy before, every item is new to this browser.
pub fn count_new(before: Option<&[String]>, fresh: &[String]) -> usize {
    match before {
        None => fresh.len(),
        Some(before) => fresh.iter().filter(|key| !before.contains(key)).count(),
    }
}

/// `%xx` escapes decoded as UTF-8 (lossily), as a person reads a room name.
fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::Pattern;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn templates_take_the_patterns_values_and_the_count() {
        let p = params(&[("room", "general")]);
        assert_eq!(fill("#{room}", &p, None), "#general");
        assert_eq!(
            fill("{count} new in {room}", &p, Some(3)),
            "3 new in general"
        );
        // What nothing fills stays as written; an unclosed brace is text.
        assert_eq!(fill("{nope} {count}", &p, None), "{nope} {count}");
        assert_eq!(fill("a {room", &p, None), "a {room");
        assert_eq!(fill("", &p, Some(1)), "");
    }

    #[test]
    fn new_items_are_those_the_copy_before_lacked() {
        let keys = |ks: &[&str]| ks.iter().map(|k| (*k).to_owned()).collect::<Vec<_>>();
        let before = keys(&["1", "2", "3"]);
        assert_eq!(count_new(Some(&before), &keys(&["2", "3", "4", "5"])), 2);
        assert_eq!(count_new(Some(&before), &keys(&["1", "2", "3"])), 0);
        assert_eq!(count_new(None, &keys(&["1", "2"])), 2);
    }

    #[test]
    fn the_first_rule_that_takes_the_url_words_it() {
        let recent = Matcher::All(vec![
            Matcher::SameOrigin,
            Matcher::Pattern(Pattern::parse("/api/rooms/:room/recent")),
        ]);
        let notices = Notices::new()
            .rule(recent, Notice::titled("#{room}"))
            .rule(Matcher::Prefix("/api/".into()), Notice::titled("api"));
        let (notice, values) = notices
            .find("/api/rooms/caf%C3%A9/recent", "https://a.example")
            .unwrap();
        assert_eq!(notice.title, "#{room}");
        assert_eq!(values, params(&[("room", "café")]));
        let (notice, values) = notices.find("/api/rooms", "https://a.example").unwrap();
        assert_eq!((notice.title.as_str(), values.len()), ("api", 0));
        assert!(notices.find("/other", "https://a.example").is_none());
        assert_eq!(
            notices.default_for("chat.example").title,
            "chat.example has something new"
        );
        let fallback = Notices::new().fallback(Notice::titled("Todos"));
        assert_eq!(fallback.default_for("x").title, "Todos");
    }

    #[test]
    fn placeholders_nothing_fills_are_named() {
        let mut notice = Notice::titled("#{room} {rom}");
        notice.body = "{count} new".into();
        assert_eq!(
            notice.unknown_placeholders(&["room".into()]),
            vec!["count".to_owned(), "rom".to_owned()]
        );
        notice.count = Some("messages".into());
        assert_eq!(
            notice.unknown_placeholders(&["room".into()]),
            vec!["rom".to_owned()]
        );
    }
}
