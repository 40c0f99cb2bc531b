//! The rules of the wire contract for names and message bodies, checked once at the edge so
//! that everything behind the handlers works with values that are already valid.
//!
//! - [`names`]: people's names: their normal form, the key that makes two of them one
//!   account, and the characters a name may not hide.
//! - [`passwords`]: what a new password must be.

pub mod names;
pub mod passwords;

pub use passwords::{validate_password, MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS};

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// Longest author name, in characters.
pub const MAX_AUTHOR_CHARS: usize = 64;
/// Longest message text, in characters.
pub const MAX_TEXT_CHARS: usize = 2000;
/// Messages in the `recent` resource.
pub const RECENT_COUNT: usize = 10;
/// Page size for message listings when the request names none.
pub const DEFAULT_LIMIT: u32 = 50;
/// Largest page size for message listings.
pub const MAX_LIMIT: u32 = 100;

/// A room name matching `^[a-z0-9][a-z0-9-]{0,63}$`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct RoomName(String);

impl RoomName {
    /// Validates a room name from a path segment.
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        let bytes = raw.as_bytes();
        let valid_char = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-';
        let ok = !bytes.is_empty()
            && bytes.len() <= 64
            && bytes[0] != b'-'
            && bytes.iter().all(valid_char);
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(ApiError::invalid(
                "invalid_room",
                "room names are 1-64 characters of a-z, 0-9 and '-', not starting with '-'",
            ))
        }
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The topic that carries this room's changes.
    pub fn topic(&self) -> String {
        format!("rooms/{}", self.0)
    }

    /// The cacheable resource holding the room's most recent messages.
    pub fn recent_url(&self) -> String {
        format!("/api/rooms/{}/recent", self.0)
    }

    /// The ephemeral resource listing who is in the room.
    pub fn presence_url(&self) -> String {
        format!("/api/rooms/{}/presence", self.0)
    }
}

impl fmt::Display for RoomName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The topic of the room list itself (a room was created).
pub const ROOMS_TOPIC: &str = "rooms";
/// The URL of the room list.
pub const ROOMS_URL: &str = "/api/rooms";

/// The JSON body of `POST /api/rooms/{room}/messages`, as sent.
#[derive(Debug, Deserialize)]
pub struct MessageBody {
    /// Display name of the writer: required from a writer who is not signed in; a signed-in
    /// writer writes under the account's name, which this may repeat but not change.
    #[serde(default)]
    pub author: Option<String>,
    /// The message itself.
    pub text: String,
}

/// A message that passed validation, ready to be stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewMessage {
    /// Where it goes.
    pub room: String,
    /// Display name of the writer.
    pub author: String,
    /// The message itself.
    pub text: String,
}

impl NewMessage {
    /// Checks lengths (in characters) and that nothing is blank, and settles the author: the
    /// account of a signed-in writer (`signed_in`), whose `author`, when given, must name that
    /// account (403 otherwise); for anyone else the given name, in its normal form.
    pub fn validate(
        room: &RoomName,
        body: MessageBody,
        signed_in: Option<&UserName>,
    ) -> Result<Self, ApiError> {
        let author = match &body.author {
            Some(author) => Some(names::normalise("author", author, MAX_AUTHOR_CHARS)?),
            None => None,
        };
        check_text("text", &body.text, MAX_TEXT_CHARS)?;
        let author = match (signed_in, author) {
            (Some(user), Some(author)) if names::name_key(&author) != user.key() => {
                return Err(ApiError::client(
                    actix_web::http::StatusCode::FORBIDDEN,
                    "author_not_account",
                    &format!(
                        "signed in as {user}, you write under that name: leave `author` out or \
                         send \"{user}\""
                    ),
                ))
            }
            (Some(user), _) => user.as_str().to_owned(),
            (None, Some(author)) => author,
            (None, None) => {
                return Err(ApiError::invalid(
                    "missing_author",
                    "`author` is required unless you are signed in",
                ))
            }
        };
        Ok(Self {
            room: room.as_str().to_owned(),
            author,
            text: body.text,
        })
    }
}

/// A name announced in a room's presence.
pub fn validate_presence_name(name: &str) -> Result<(), ApiError> {
    check_text("name", name, MAX_AUTHOR_CHARS)
}

fn check_text(field: &str, value: &str, max: usize) -> Result<(), ApiError> {
    if value.trim().is_empty() {
        return Err(ApiError::invalid(
            &format!("empty_{field}"),
            &format!("`{field}` must not be empty"),
        ));
    }
    let chars = value.chars().count();
    if chars > max {
        return Err(ApiError::invalid(
            &format!("{field}_too_long"),
            &format!("`{field}` has {chars} characters; at most {max} are allowed"),
        ));
    }
    // Control characters have no place in a chat line (line breaks and tabs aside), and NUL
    // would be stored by one backend and refused by another.
    if value
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(ApiError::invalid(
            &format!("{field}_control_character"),
            &format!("`{field}` contains a control character"),
        ));
    }
    Ok(())
}

/// A user's name, in its normal form (see [`names`]): the same rules as an author, 1-64
/// characters. Two names are one account when their [`UserName::key`]s are equal.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct UserName(String);

impl UserName {
    /// Validates a name from a body or a path segment and brings it to its normal form.
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        names::normalise("name", raw, MAX_AUTHOR_CHARS).map(Self)
    }

    /// A name as the store keeps it: valid when it was registered (rules may have grown since).
    pub fn stored(name: String) -> Self {
        Self(name)
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What the store finds the account by: equal for `Ann`, `ann ` and `ＡＮＮ`.
    pub fn key(&self) -> String {
        names::name_key(&self.0)
    }
}

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The room a topic belongs to: `rooms/general` → `general`. Other topics (`rooms`) have none.
pub fn room_of_topic(topic: &str) -> Option<&str> {
    let rest = topic.strip_prefix("rooms/")?;
    let room = rest.split('/').next().unwrap_or(rest);
    (!room.is_empty()).then_some(room)
}

/// A stored message, as every API response shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Increasing per store; pages are cut by it.
    pub id: i64,
    /// The room it belongs to.
    pub room: String,
    /// Display name of the writer.
    pub author: String,
    /// The message itself.
    pub text: String,
    /// RFC 3339 time of storage, UTC.
    pub created_at: String,
    /// The event that announced it.
    pub event_id: i64,
}

/// Messages of one room, oldest first: the `recent` resource (the newest [`RECENT_COUNT`]) and
/// every page of the message listing.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoomMessages {
    /// The room.
    pub room: String,
    /// The messages, oldest first.
    pub messages: Vec<Message>,
    /// The newest event of this room: the version behind the ETag, and where a stream resumes.
    pub last_event_id: i64,
}

/// One room in the room list.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoomSummary {
    /// The room's name.
    pub name: String,
    /// The event that announced the room's creation; the list's version is the largest.
    pub created_event_id: i64,
}

/// Which side of a message id a page is cut from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageCursor {
    /// The newest messages.
    Latest,
    /// Messages with smaller ids, newest first in selection but returned oldest first.
    Before(i64),
    /// Messages with larger ids, oldest first.
    After(i64),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names_follow_the_contract() {
        for ok in ["general", "a", "0-x", &"a".repeat(64)] {
            assert!(RoomName::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-x",
            "General",
            "a_b",
            "a b",
            "é",
            &"a".repeat(65),
            "a/b",
        ] {
            assert!(RoomName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn lengths_count_characters_not_bytes() {
        let room = RoomName::parse("r").unwrap();
        let body = |text: String| MessageBody {
            author: Some("ann".into()),
            text,
        };
        let validate = |text: String| NewMessage::validate(&room, body(text), None);
        assert!(validate("é".repeat(2000)).is_ok());
        assert!(validate("é".repeat(2001)).is_err());
        assert!(validate("   ".into()).is_err());
        assert!(validate("a\0b".into()).is_err());
        assert!(validate("a\u{7}b".into()).is_err());
        assert!(validate("two\nlines\tand a tab".into()).is_ok());
    }

    #[test]
    fn a_signed_in_writer_writes_under_the_account_name() {
        let room = RoomName::parse("r").unwrap();
        let ann = UserName::parse("Ann").unwrap();
        let body = |author: Option<&str>| MessageBody {
            author: author.map(str::to_owned),
            text: "hi".into(),
        };
        let author = |given: Option<&str>, user: Option<&UserName>| {
            NewMessage::validate(&room, body(given), user).map(|m| m.author)
        };
        assert_eq!(author(None, Some(&ann)).unwrap(), "Ann");
        assert_eq!(author(Some(" ann "), Some(&ann)).unwrap(), "Ann");
        assert!(matches!(
            author(Some("bob"), Some(&ann)),
            Err(ApiError::Client { status, .. }) if status == 403
        ));
        assert_eq!(author(Some("  bob "), None).unwrap(), "bob");
        assert!(author(None, None).is_err());
        assert!(author(Some("bob\u{202E}"), None).is_err());
    }

    #[test]
    fn user_names_are_normalised() {
        assert_eq!(UserName::parse(" Ann  Lee ").unwrap().as_str(), "Ann Lee");
        assert_eq!(
            UserName::parse("ANN").unwrap().key(),
            UserName::parse("ann").unwrap().key()
        );
        assert!(UserName::parse(" ").is_err());
        assert!(UserName::parse(&"é".repeat(65)).is_err());
    }

    #[test]
    fn topics_name_their_room() {
        assert_eq!(room_of_topic("rooms/general"), Some("general"));
        assert_eq!(room_of_topic("rooms/a/b"), Some("a"));
        assert_eq!(room_of_topic("rooms"), None);
        assert_eq!(room_of_topic("rooms/"), None);
        assert_eq!(room_of_topic("lobby"), None);
    }
}
