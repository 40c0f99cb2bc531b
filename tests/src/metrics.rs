//! Reading samples out of the server's `/metrics` (Prometheus text exposition format).

/// The value of the first sample named `name` whose labels include every pair of `labels`.
/// Comment lines and other metrics are skipped; a sample without labels matches an empty
/// `labels`.
pub fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    matching(text, name, labels).next()
}

/// The sum of every sample named `name` whose labels include `labels` (e.g. over all statuses),
/// or `None` when there is none.
pub fn sum(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    matching(text, name, labels).reduce(|a, b| a + b)
}

fn matching<'t>(
    text: &'t str,
    name: &'t str,
    labels: &'t [(&'t str, &'t str)],
) -> impl Iterator<Item = f64> + 't {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(move |line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, label_text) = match series.split_once('{') {
                Some((metric, rest)) => (metric, rest.strip_suffix('}')?),
                None => (series, ""),
            };
            if metric != name {
                return None;
            }
            let have = parse_labels(label_text);
            let all = labels
                .iter()
                .all(|(k, v)| have.iter().any(|(hk, hv)| hk == k && hv == v));
            all.then(|| value.parse().ok()).flatten()
        })
}

/// `a="x",b="y"` into pairs; values are unescaped (`\"`, `\\`, `\n`).
fn parse_labels(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some((key, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, other)) => value.push(other),
                    None => {}
                },
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        out.push((key.trim().trim_start_matches(',').trim().to_string(), value));
        rest = &after[end..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# HELP nudge_event_streams_open Open event streams.
# TYPE nudge_event_streams_open gauge
nudge_event_streams_open 3
nudge_http_responses_total{method="GET",route="/api/rooms/{room}/recent",status="200"} 7
nudge_http_responses_total{method="GET",route="/api/rooms/{room}/recent",status="304"} 2
nudge_http_responses_total{method="POST",route="/api/rooms/{room}/messages",status="201"} 5
"#;

    #[test]
    fn finds_samples_by_name_and_labels() {
        assert_eq!(sample(TEXT, "nudge_event_streams_open", &[]), Some(3.0));
        let recent = [("route", "/api/rooms/{room}/recent"), ("method", "GET")];
        assert_eq!(
            sample(
                TEXT,
                "nudge_http_responses_total",
                &[recent[0], recent[1], ("status", "304")]
            ),
            Some(2.0)
        );
        assert_eq!(
            sample(TEXT, "nudge_http_responses_total", &[("status", "201")]),
            Some(5.0)
        );
        assert_eq!(
            sample(TEXT, "nudge_http_responses_total", &[("status", "500")]),
            None
        );
        assert_eq!(sample(TEXT, "missing", &[]), None);
        assert_eq!(sum(TEXT, "nudge_http_responses_total", &recent), Some(9.0));
        assert_eq!(sum(TEXT, "missing", &[]), None);
    }
}
