//! Recognising, from a connection's first bytes, a request this path may take: a complete
//! HTTP/1.1 `GET /api/events…` head (at the stream's path) with nothing unusual about it. Anything else is left to
//! actix-web, which has the one implementation of every other case (errors included).

/// How a request that opens an event stream starts, before its path.
const METHOD: &[u8] = b"GET ";
/// Headers a request may have and still be taken (more go to actix-web).
const MAX_HEADERS: usize = 48;

/// The parts of a stream request's head that opening the stream reads.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct StreamHead {
    /// Bytes the head takes on the wire, up to and including its blank line.
    pub len: usize,
    /// The request target, `/api/events?…`, for the request log.
    pub target: String,
    /// The query string, without `?`.
    pub query: String,
    /// The first `Last-Event-ID` header.
    pub last_event_id: Option<String>,
    /// Every `Cookie` header's value.
    pub cookies: Vec<String>,
    /// The first `X-Forwarded-For` header.
    pub forwarded_for: Option<String>,
}

/// Whether `start`, the first bytes read so far, may still become a stream request: false as
/// soon as they cannot, so every other connection goes to actix-web after its first read.
pub fn may_open_stream(start: &[u8], path: &str) -> bool {
    let path = path.as_bytes();
    let agrees = |expected: &[u8], at: usize| {
        let got = start.get(at..).unwrap_or_default();
        let common = got.len().min(expected.len());
        got[..common] == expected[..common]
    };
    agrees(METHOD, 0)
        && agrees(path, METHOD.len())
        && start
            .get(METHOD.len() + path.len())
            .is_none_or(|next| matches!(next, b' ' | b'?'))
}

/// What a connection's first bytes say.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A complete stream request this path takes.
    Stream(StreamHead),
    /// The head has not fully arrived yet (of any request: every first head is read whole
    /// before it is handed on, so that it has one deadline in all).
    Partial,
    /// Anything else: for actix-web.
    Other,
}

/// Parses the first request of a connection.
///
/// Taken: `GET /api/events[?query] HTTP/1.1` with one `Host`, without a body (`Content-Length`
/// other than one 0, `Transfer-Encoding`), `Expect`, `Upgrade`, `Connection: upgrade` or
/// `Origin` (a cross-origin stream needs CORS headers, which actix-cors adds), with header
/// values that are visible ASCII: what actix-web would read as the same request with no body.
pub fn parse(bytes: &[u8], path: &str) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let parsed = request.parse(bytes);
    if !may_open_stream(bytes, path) {
        return match parsed {
            Ok(httparse::Status::Partial) => Parsed::Partial,
            _ => Parsed::Other,
        };
    }
    let len = match parsed {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(_) => return Parsed::Other,
    };
    let (Some("GET"), Some(target), Some(1)) = (request.method, request.path, request.version)
    else {
        return Parsed::Other;
    };
    // The target as actix-web reads it, so that both see the same path and query.
    let Ok(uri) = actix_web::http::Uri::try_from(target) else {
        return Parsed::Other;
    };
    if uri.path() != path || uri.scheme().is_some() || uri.authority().is_some() {
        return Parsed::Other;
    }
    let mut head = StreamHead {
        len,
        target: target.to_owned(),
        query: uri.query().unwrap_or("").to_owned(),
        ..StreamHead::default()
    };
    let (mut host, mut content_length) = (false, false);
    for header in request.headers.iter() {
        let Some(value) = visible_ascii(header.value) else {
            return Parsed::Other;
        };
        let name = header.name;
        if name.eq_ignore_ascii_case("content-length") {
            // One, and empty: actix-web refuses a second one.
            if value.trim() != "0" || std::mem::replace(&mut content_length, true) {
                return Parsed::Other;
            }
        } else if ["transfer-encoding", "expect", "upgrade", "origin"]
            .iter()
            .any(|refused| name.eq_ignore_ascii_case(refused))
        {
            return Parsed::Other;
        } else if name.eq_ignore_ascii_case("connection") {
            // actix-web marks such a connection as upgraded.
            if value
                .split(',')
                .any(|option| option.trim().eq_ignore_ascii_case("upgrade"))
            {
                return Parsed::Other;
            }
        } else if name.eq_ignore_ascii_case("host") {
            // One: actix-web refuses a second one.
            if std::mem::replace(&mut host, true) {
                return Parsed::Other;
            }
        } else if name.eq_ignore_ascii_case("last-event-id") {
            head.last_event_id.get_or_insert_with(|| value.to_owned());
        } else if name.eq_ignore_ascii_case("cookie") {
            head.cookies.push(value.to_owned());
        } else if name.eq_ignore_ascii_case(crate::limits::FORWARDED_FOR) {
            head.forwarded_for.get_or_insert_with(|| value.to_owned());
        }
    }
    // actix-web answers an HTTP/1.1 request without `Host` with 400, as it does two of them.
    if !host {
        return Parsed::Other;
    }
    Parsed::Stream(head)
}

/// The value as text, when every byte is visible ASCII, space or tab (what actix-web's
/// `HeaderValue::to_str` accepts).
fn visible_ascii(value: &[u8]) -> Option<&str> {
    value
        .iter()
        .all(|&b| b == b'\t' || (b' '..=b'~').contains(&b))
        .then(|| std::str::from_utf8(value).ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Parsed {
        super::parse(bytes, "/api/events")
    }

    fn stream(bytes: &str) -> StreamHead {
        match parse(bytes.as_bytes()) {
            Parsed::Stream(head) => head,
            other => panic!("{bytes:?} was not taken: {other:?}"),
        }
    }

    #[test]
    fn takes_a_plain_stream_request_and_reads_what_opening_it_needs() {
        let bytes = "GET /api/events?topic=lists/general&lastEventId=4 HTTP/1.1\r\nHost: x\r\n\
                     Accept: text/event-stream\r\nLast-Event-ID: 7\r\nLast-Event-ID: 9\r\n\
                     Cookie: a=1\r\nCookie: nudge_session=t\r\nX-Forwarded-For: 10.0.0.1, 10.0.0.2\r\n\r\n";
        let head = stream(bytes);
        assert_eq!(head.len, bytes.len());
        assert_eq!(head.target, "/api/events?topic=lists/general&lastEventId=4");
        assert_eq!(head.query, "topic=lists/general&lastEventId=4");
        assert_eq!(head.last_event_id.as_deref(), Some("7"));
        assert_eq!(head.cookies, ["a=1", "nudge_session=t"]);
        assert_eq!(head.forwarded_for.as_deref(), Some("10.0.0.1, 10.0.0.2"));
    }

    #[test]
    fn the_head_ends_at_its_blank_line_whatever_follows() {
        let first = "GET /api/events HTTP/1.1\r\nHost: x\r\n\r\n";
        let head = stream(&format!("{first}GET /healthz HTTP/1.1\r\n"));
        assert_eq!(head.len, first.len());
        assert_eq!(head.query, "");
    }

    #[test]
    fn waits_for_the_rest_of_a_head_that_may_be_a_stream_request() {
        for start in [
            "G",
            "GET /api/ev",
            "GET /api/events?topic=a HTTP/1.1\r\nHost: x\r\n",
        ] {
            assert_eq!(parse(start.as_bytes()), Parsed::Partial, "{start:?}");
        }
    }

    #[test]
    fn reads_every_first_head_whole_before_handing_it_on() {
        for start in [
            "POST /api/lists/a/messages HTTP/1.1\r\nHost: x\r\n",
            "GET / HTTP/1.1\r\n",
        ] {
            assert_eq!(parse(start.as_bytes()), Parsed::Partial, "{start:?}");
        }
        let body_follows = "POST /api/lists/a/messages HTTP/1.1\r\nContent-Length: 9\r\n\r\n{";
        assert_eq!(parse(body_follows.as_bytes()), Parsed::Other);
    }

    #[test]
    fn leaves_every_other_request_to_actix_web() {
        for bytes in [
            "GET /api/rooms HTTP/1.1\r\nHost: x\r\n\r\n",
            "GET /api/eventsx HTTP/1.1\r\nHost: x\r\n\r\n",
            "GET /api/events/ HTTP/1.1\r\nHost: x\r\n\r\n",
            "POST /api/events HTTP/1.1\r\nHost: x\r\n\r\n",
            "HEAD /api/events HTTP/1.1\r\nHost: x\r\n\r\n",
            "GET /api/events HTTP/1.0\r\nHost: x\r\n\r\n",
            "GET /api/events HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
            "GET /api/events HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET /api/events HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n",
            "GET /api/events HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n",
            "GET /api/events HTTP/1.1\r\nHost: x\r\nOrigin: https://elsewhere.example\r\n\r\n",
            "GET /api/events HTTP/1.1\r\nHost: x\r\nLast-Event-ID: \u{e9}\r\n\r\n",
            "GET /api/events HTTP/1.1\r\nHost x\r\n\r\n",
            "GET /api/events HTTP/1.1\r\nAccept: text/event-stream\r\n\r\n",
            "GET /api/events HTTP/1.1\r\nHost: x\r\nhost: y\r\n\r\n",
            "GET /api/events HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n",
            "GET /api/events HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\n\r\n",
            "GET http://x/api/events HTTP/1.1\r\nHost: x\r\n\r\n",
            "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        ] {
            assert_eq!(parse(bytes.as_bytes()), Parsed::Other, "{bytes:?}");
        }
    }

    #[test]
    fn an_empty_body_is_no_body() {
        stream("GET /api/events HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
    }

    #[test]
    fn too_many_headers_go_to_actix_web() {
        let many: String = (0..MAX_HEADERS + 1)
            .map(|i| format!("X-{i}: y\r\n"))
            .collect();
        let bytes = format!("GET /api/events HTTP/1.1\r\n{many}\r\n");
        assert_eq!(parse(bytes.as_bytes()), Parsed::Other);
    }
}
