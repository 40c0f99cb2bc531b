//! Property tests of [`super::head::parse`] against actix-web's own HTTP/1 parser: every head
//! the stream path claims, actix-web reads as the same request (method, path, query, the
//! headers opening a stream reads, no body, nothing after it taken as part of it); a plain
//! stream request is claimed; and no input makes either parser panic.

use actix_http::h1::{Codec, Message, MessageType};
use actix_http::{HttpMessage, Method, ServiceConfig, Version};
use bytes::BytesMut;
use proptest::prelude::*;
use tokio_util::codec::Decoder;

use super::head::Parsed;

fn parse(bytes: &[u8]) -> Parsed {
    super::head::parse(bytes, "/api/events")
}

/// Cases per property: enough to reach every combination of the parts below many times over,
/// few enough for every `cargo test`.
const CASES: u32 = 256;

/// A header name from the set that matters to either parser, in any letter case.
fn header_name() -> impl Strategy<Value = String> {
    let names = prop::sample::select(vec![
        "Host",
        "Last-Event-ID",
        "Cookie",
        "X-Forwarded-For",
        "Content-Length",
        "Transfer-Encoding",
        "Expect",
        "Upgrade",
        "Connection",
        "Origin",
        "Accept",
        "X-Other",
    ]);
    (names, any::<u64>()).prop_map(|(name, casing)| {
        name.chars()
            .enumerate()
            .map(|(i, c)| {
                if casing >> (i % 64) & 1 == 1 {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                }
            })
            .collect()
    })
}

/// A header value: ordinary ones, the values that change a request's meaning, and odd bytes.
fn header_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "x", "0", " 0 ", "+0", "00", "1", "chunked", "websocket", "upgrade", "keep-alive",
            "Upgrade, keep-alive", "close", "100-continue", "42", "https://elsewhere.example",
            "a=1; nudge_session=t", "10.0.0.1, 10.0.0.2", "",
        ])
        .prop_map(|v| v.as_bytes().to_vec()),
        1 => prop::collection::vec(any::<u8>(), 0..12),
        2 => "[ -~\t]{0,16}".prop_map(String::into_bytes),
    ]
}

/// The request line's parts and line endings, from the usual to the odd.
fn request_line() -> impl Strategy<Value = Vec<u8>> {
    // Weighted towards what may be claimed, so that most cases test a claim.
    let method = prop_oneof![
        6 => Just("GET"),
        1 => prop::sample::select(vec!["get", "POST", "HEAD", "OPTIONS", "CONNECT"]),
    ];
    let path = prop_oneof![
        6 => Just("/api/events"),
        1 => prop::sample::select(vec![
        "/api/events/",
        "/api/eventsx",
        "/api/%65vents",
        "//api/events",
        "/api/events#f",
        "http://x/api/events",
        "*",
    ]),
    ];
    let query = prop_oneof![
        Just(String::new()),
        "\\?[a-zA-Z0-9=&%/*#{}|^`\\\\\"<>\\[\\]._~-]{0,24}",
        Just("?topic=lists/general&lastEventId=4".to_owned()),
    ];
    let version = prop_oneof![
        6 => Just("HTTP/1.1"),
        1 => prop::sample::select(vec!["HTTP/1.0", "HTTP/2.0", "http/1.1"]),
    ];
    let gap = prop_oneof![8 => Just(" "), 1 => prop::sample::select(vec!["  ", "\t"])];
    (method, gap.clone(), path, query, gap, version).prop_map(
        |(method, gap1, path, query, gap2, version)| {
            format!("{method}{gap1}{path}{query}{gap2}{version}").into_bytes()
        },
    )
}

/// A whole head: a request line, headers (duplicates and all), line endings of either kind,
/// sometimes a folded line, then the blank line and possibly the start of what follows.
fn head_bytes() -> impl Strategy<Value = Vec<u8>> {
    let eol = prop_oneof![6 => Just("\r\n"), 1 => Just("\n")];
    let header = (
        header_name(),
        prop::sample::select(vec![": ", ":", " : ", ":\t"]),
        header_value(),
    );
    (
        request_line(),
        prop::collection::vec((header, eol.clone()), 0..5),
        prop::bool::weighted(0.8),
        eol.clone(),
        eol,
        prop::sample::select(vec!["", "GET /healthz HTTP/1.1\r\n\r\n", "abc"]),
    )
        .prop_map(|(line, headers, host, eol1, eol2, after)| {
            let mut bytes = line;
            bytes.extend_from_slice(eol1.as_bytes());
            if host {
                bytes.extend_from_slice(b"Host: x");
                bytes.extend_from_slice(eol1.as_bytes());
            }
            for ((name, separator, value), eol) in headers {
                bytes.extend_from_slice(name.as_bytes());
                bytes.extend_from_slice(separator.as_bytes());
                bytes.extend_from_slice(&value);
                bytes.extend_from_slice(eol.as_bytes());
            }
            bytes.extend_from_slice(eol2.as_bytes());
            bytes.extend_from_slice(after.as_bytes());
            bytes
        })
}

thread_local! {
    /// actix-http's configuration starts a date-keeping task, which needs a local task set.
    static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
}

/// What actix-web's HTTP/1 codec makes of `bytes`: the request, and how many bytes it left.
fn actix_reads(bytes: &[u8]) -> Result<(actix_http::Request, MessageType, usize), String> {
    let decode = async {
        let mut codec = Codec::new(ServiceConfig::default());
        let mut buffer = BytesMut::from(bytes);
        match codec.decode(&mut buffer) {
            Ok(Some(Message::Item(request))) => Ok((request, codec.message_type(), buffer.len())),
            other => Err(format!("{other:?}")),
        }
    };
    RUNTIME.with(|runtime| tokio::task::LocalSet::new().block_on(runtime, decode))
}

fn header_texts(request: &actix_http::Request, name: &str) -> Vec<String> {
    request
        .headers()
        .get_all(name)
        .map(|v| {
            v.to_str()
                .expect("a claimed head has ASCII values")
                .to_owned()
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// Every head the stream path claims, actix-web reads as the same bodiless GET.
    #[test]
    fn a_claimed_head_is_the_same_request_to_actix_web(bytes in head_bytes()) {
        if let Parsed::Stream(head) = parse(&bytes) {
            let shown = String::from_utf8_lossy(&bytes).into_owned();
            let (request, payload, left) = actix_reads(&bytes)
                .map_err(|e| TestCaseError::fail(format!("actix-web refuses {shown:?}: {e}")))?;
            prop_assert_eq!(request.method(), &Method::GET, "{}", shown);
            prop_assert_eq!(request.version(), Version::HTTP_11, "{}", shown);
            prop_assert_eq!(request.path(), "/api/events", "{}", shown);
            prop_assert_eq!(request.uri().query().unwrap_or(""), head.query.as_str(), "{}", shown);
            prop_assert_eq!(payload, MessageType::None, "a body or an upgrade: {}", shown);
            prop_assert!(!request.upgrade(), "{}", shown);
            prop_assert_eq!(left, bytes.len() - head.len, "the head's length: {}", shown);
            prop_assert_eq!(
                header_texts(&request, "last-event-id").into_iter().next(),
                head.last_event_id.clone(),
                "{}", shown
            );
            prop_assert_eq!(header_texts(&request, "cookie"), head.cookies.clone(), "{}", shown);
            prop_assert_eq!(
                header_texts(&request, "x-forwarded-for").into_iter().next(),
                head.forwarded_for.clone(),
                "{}", shown
            );
            let expect = request.headers().contains_key("expect");
            prop_assert!(!expect, "{}", shown);
        }
    }

    /// A plain stream request, whatever its ordinary headers and their casing, is claimed.
    #[test]
    fn a_plain_stream_request_is_claimed(
        query in "(topic=[a-z]{1,8}(/[a-z*]{1,8})?&?){0,3}",
        headers in prop::collection::vec(
            (
                prop::sample::select(vec!["accept", "ACCEPT", "Last-Event-ID", "cookie", "User-Agent"]),
                "[!-~]([ -~]{0,14}[!-~])?",
            ),
            0..6,
        ),
    ) {
        let mut text = format!("GET /api/events?{query} HTTP/1.1\r\nHost: x\r\n");
        for (name, value) in &headers {
            text.push_str(&format!("{name}: {value}\r\n"));
        }
        text.push_str("\r\n");
        prop_assert!(matches!(parse(text.as_bytes()), Parsed::Stream(_)), "{:?}", text);
    }

    /// No input makes the head parser panic, and what is not a complete stream head is never
    /// claimed.
    #[test]
    fn any_bytes_are_parsed_without_panicking(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        if let Parsed::Stream(head) = parse(&bytes) {
            prop_assert!(head.len <= bytes.len());
            prop_assert!(actix_reads(&bytes).is_ok());
        }
    }

    /// Every prefix of a claimable head waits for more, so a head split across reads is read
    /// whole.
    #[test]
    fn a_head_cut_anywhere_waits_for_the_rest(cut in 0usize..60) {
        let text = b"GET /api/events?topic=lists/a HTTP/1.1\r\nHost: x\r\nCookie: a=1\r\n\r\n";
        let cut = cut.min(text.len() - 1);
        prop_assert_eq!(parse(&text[..cut]), Parsed::Partial);
    }
}
