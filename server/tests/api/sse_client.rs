//! An event-stream reader that parses the way EventSource does (WHATWG HTML, "Interpreting an
//! event stream"): lines end in LF, CR or CRLF; `field: value` with one optional space; `data`
//! lines join with LF; a blank line dispatches; comments are kept apart so tests can see
//! heartbeats; `id` persists as the last event id.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::time::Instant;

/// How long one wait for the next item, event or run of events may take in all. A deadline on
/// the whole wait, not on silence: heartbeats must not keep a test that waits for an event
/// that never comes waiting forever.
pub const WAIT: Duration = Duration::from_secs(20);

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub event: String,
    pub data: String,
    /// The last event id after this event (as the browser would resend it).
    pub last_event_id: String,
    /// Whether this event itself carried an `id:` field.
    pub has_id: bool,
}

impl SseEvent {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.data).expect("event data is JSON")
    }

    pub fn id(&self) -> i64 {
        assert!(self.has_id, "event without id: {self:?}");
        self.last_event_id.parse().expect("a numeric id")
    }
}

/// What the stream yields besides events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Event(SseEvent),
    Comment(String),
    Retry(u64),
}

pub struct SseClient {
    stream: std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<Bytes>> + Send>>,
    pub headers: reqwest::header::HeaderMap,
    buffer: String,
    items: VecDeque<Item>,
    event: String,
    data: Vec<String>,
    last_event_id: String,
    has_id: bool,
    ended: bool,
}

impl SseClient {
    pub fn new(response: reqwest::Response) -> Self {
        Self {
            headers: response.headers().clone(),
            stream: Box::pin(response.bytes_stream()),
            buffer: String::new(),
            items: VecDeque::new(),
            event: String::new(),
            data: Vec::new(),
            last_event_id: String::new(),
            has_id: false,
            ended: false,
        }
    }

    /// The next item, or `None` when the server ended the stream. Fails after [`WAIT`].
    pub async fn next_item(&mut self) -> Option<Item> {
        self.next_item_before(Instant::now() + WAIT).await
    }

    /// [`SseClient::next_item`], failing at `deadline`.
    pub async fn next_item_before(&mut self, deadline: Instant) -> Option<Item> {
        loop {
            if let Some(item) = self.items.pop_front() {
                return Some(item);
            }
            if self.ended {
                return None;
            }
            let chunk = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .expect("the stream said what was awaited before the deadline");
            match chunk {
                Some(Ok(bytes)) => {
                    self.buffer
                        .push_str(std::str::from_utf8(&bytes).expect("UTF-8"));
                    self.parse_lines();
                }
                Some(Err(_)) | None => self.ended = true,
            }
        }
    }

    /// The next dispatched event, skipping comments and `retry`. Fails after [`WAIT`], however
    /// many heartbeats arrive meanwhile.
    pub async fn next_event(&mut self) -> Option<SseEvent> {
        self.next_event_within(WAIT).await
    }

    /// [`SseClient::next_event`], failing after `wait`.
    pub async fn next_event_within(&mut self, wait: Duration) -> Option<SseEvent> {
        self.next_event_before(Instant::now() + wait).await
    }

    async fn next_event_before(&mut self, deadline: Instant) -> Option<SseEvent> {
        loop {
            match self.next_item_before(deadline).await? {
                Item::Event(event) => return Some(event),
                Item::Comment(_) | Item::Retry(_) => {}
            }
        }
    }

    /// Reads events until one satisfies `stop`, returning all of them including that one.
    /// Fails after [`WAIT`] in all.
    pub async fn events_until(&mut self, mut stop: impl FnMut(&SseEvent) -> bool) -> Vec<SseEvent> {
        let deadline = Instant::now() + WAIT;
        let mut seen = Vec::new();
        loop {
            let event = self
                .next_event_before(deadline)
                .await
                .expect("the stream is still open");
            let done = stop(&event);
            seen.push(event);
            if done {
                return seen;
            }
        }
    }

    fn parse_lines(&mut self) {
        loop {
            let Some(end) = self.buffer.find(['\n', '\r']) else {
                return;
            };
            // A CR at the very end may be the first half of a CRLF: wait for more.
            if self.buffer.as_bytes()[end] == b'\r' && end + 1 == self.buffer.len() {
                return;
            }
            let line: String = self.buffer[..end].to_owned();
            let skip = if self.buffer[end..].starts_with("\r\n") {
                2
            } else {
                1
            };
            self.buffer.drain(..end + skip);
            self.process_line(&line);
        }
    }

    fn process_line(&mut self, line: &str) {
        if line.is_empty() {
            self.dispatch();
            return;
        }
        if let Some(comment) = line.strip_prefix(':') {
            self.items
                .push_back(Item::Comment(comment.trim().to_owned()));
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = value.to_owned(),
            "data" => self.data.push(value.to_owned()),
            "id" if !value.contains('\0') => {
                self.last_event_id = value.to_owned();
                self.has_id = true;
            }
            "retry" => {
                if let Ok(ms) = value.parse() {
                    self.items.push_back(Item::Retry(ms));
                }
            }
            _ => {}
        }
    }

    fn dispatch(&mut self) {
        let has_id = std::mem::take(&mut self.has_id);
        if self.data.is_empty() {
            self.event.clear();
            return;
        }
        let event = std::mem::take(&mut self.event);
        let data = std::mem::take(&mut self.data).join("\n");
        self.items.push_back(Item::Event(SseEvent {
            event: if event.is_empty() {
                "message".into()
            } else {
                event
            },
            data,
            last_event_id: self.last_event_id.clone(),
            has_id,
        }));
    }
}
