//! Writes that take effect once: the first answer to a client's `Idempotency-Key` (status, the
//! headers that matter, body) is stored in the same transaction as the write, and a retry with
//! the same key gets that answer again (marked `Idempotent-Replayed: true`) without writing
//! anything. The same key with another request is refused with 422. Stored answers live as
//! long as the log (retention removes both).
//!
//! A key is compared with the request it came with through a digest of the method, the path
//! and the body ([`Fingerprint`]), so a retry must be byte-for-byte the same request.
//!
//! On SQLite the whole thing is one call ([`write_once`]) around the app's write closure. On
//! PostgreSQL, inside the transaction the app holds: [`postgres::lock`] (the commit lock, so a
//! duplicate on another node waits for the first to commit), [`postgres::find`], the app's
//! write, then [`postgres::keep`].

use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::store::sqlite::{SqliteStore, WriteTx};
use crate::store::{StoreError, StoreResult};

/// The request header carrying the client's key.
pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
/// Set on an answer replayed from an earlier request with the same key.
pub const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");
/// The longest key accepted.
pub const MAX_KEY_LEN: usize = 255;
/// Response headers kept with an answer (the rest are the server's to set again).
const KEPT_HEADERS: [&str; 3] = ["location", "content-type", "cache-control"];

/// A client's key: 1 to [`MAX_KEY_LEN`] printable ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// The request's key; `None` without the header, 400 for a malformed one.
    pub fn from_request(req: &HttpRequest) -> Result<Option<Self>, ApiError> {
        let Some(value) = req.headers().get(IDEMPOTENCY_KEY) else {
            return Ok(None);
        };
        Self::parse(value.to_str().unwrap_or_default()).map(Some)
    }

    /// A key from its text, or 400.
    pub fn parse(key: &str) -> Result<Self, ApiError> {
        let printable = key.bytes().all(|b| b.is_ascii_graphic());
        if key.is_empty() || key.len() > MAX_KEY_LEN || !printable {
            return Err(ApiError::invalid(
                "invalid_idempotency_key",
                &format!("Idempotency-Key must be 1-{MAX_KEY_LEN} printable ASCII characters"),
            ));
        }
        Ok(Self(key.to_owned()))
    }

    /// The key's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What tells a retry (the same request) from a reuse of its key (another request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// SHA-256 of the method, the path and the body.
    pub fn of(req: &HttpRequest, body: &[u8]) -> Self {
        let mut digest = Sha256::new();
        digest.update(req.method().as_str());
        digest.update([0]);
        digest.update(req.path());
        digest.update([0]);
        digest.update(body);
        Self(digest.finalize().into())
    }
}

/// An answer as it is kept: the status, the headers that matter, the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAnswer {
    /// The status code.
    pub status: u16,
    /// `Location`, `Content-Type` and `Cache-Control`, when the answer had them.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl StoredAnswer {
    /// A JSON answer with `status` and the extra headers given (`Location`, …).
    pub fn json(
        status: StatusCode,
        headers: &[(&str, String)],
        body: &impl serde::Serialize,
    ) -> Result<Self, StoreError> {
        let body = serde_json::to_vec(body).map_err(|e| StoreError::Database(e.to_string()))?;
        let mut kept = vec![("content-type".to_owned(), "application/json".to_owned())];
        kept.extend(
            headers
                .iter()
                .filter(|(name, _)| KEPT_HEADERS.contains(&name.to_ascii_lowercase().as_str()))
                .map(|(name, value)| (name.to_ascii_lowercase(), value.clone())),
        );
        Ok(Self {
            status: status.as_u16(),
            headers: kept,
            body,
        })
    }

    /// The HTTP response; a replayed one says so.
    pub fn into_response(self, replayed: bool) -> HttpResponse {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::OK);
        let mut response = HttpResponse::build(status);
        for (name, value) in &self.headers {
            if let (Ok(name), Ok(value)) = (
                HeaderName::try_from(name.as_str()),
                HeaderValue::try_from(value.as_str()),
            ) {
                response.insert_header((name, value));
            }
        }
        if replayed {
            response.insert_header((IDEMPOTENT_REPLAYED, "true"));
        }
        response.body(self.body)
    }

    fn headers_json(&self) -> String {
        serde_json::to_string(&self.headers).unwrap_or_else(|_| "[]".to_owned())
    }

    fn from_columns(status: i64, headers: &str, body: Vec<u8>) -> Self {
        Self {
            status: u16::try_from(status).unwrap_or(200),
            headers: serde_json::from_str(headers).unwrap_or_default(),
            body,
        }
    }
}

/// The answer kept for `key`, if any; [`StoreError::IdempotencyConflict`] when it was kept for
/// another request. Run it inside the write's transaction.
pub fn find(
    conn: &rusqlite::Connection,
    key: &IdempotencyKey,
    fingerprint: &Fingerprint,
) -> StoreResult<Option<StoredAnswer>> {
    use rusqlite::OptionalExtension;
    let row: Option<(Vec<u8>, i64, String, Vec<u8>)> = conn
        .prepare_cached(
            "SELECT request, status, headers, body FROM nudge_idempotency WHERE key = ?1",
        )?
        .query_row([key.as_str()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .optional()?;
    match row {
        None => Ok(None),
        Some((request, ..)) if request != fingerprint.0 => Err(StoreError::IdempotencyConflict),
        Some((_, status, headers, body)) => {
            Ok(Some(StoredAnswer::from_columns(status, &headers, body)))
        }
    }
}

/// Keeps `answer` as the one for `key`, inside the write's transaction.
pub fn keep(
    conn: &rusqlite::Connection,
    key: &IdempotencyKey,
    fingerprint: &Fingerprint,
    answer: &StoredAnswer,
) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO nudge_idempotency (key, request, status, headers, body, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(rusqlite::params![
        key.as_str(),
        &fingerprint.0[..],
        i64::from(answer.status),
        answer.headers_json(),
        answer.body,
        crate::store::sqlite::now_ms(),
    ])?;
    Ok(())
}

/// Runs `write` once per key on the SQLite writer: with a key already answered (for the same
/// request), returns that answer and `true` without running `write`; otherwise runs it and
/// keeps its answer under the key in the same transaction. Without a key, just runs it.
pub async fn write_once<E>(
    store: &SqliteStore,
    key: Option<IdempotencyKey>,
    fingerprint: Fingerprint,
    write: impl FnOnce(&mut WriteTx<'_>) -> Result<StoredAnswer, E> + Send + 'static,
) -> Result<(StoredAnswer, bool), E>
where
    E: From<StoreError> + Send + 'static,
{
    store
        .write(move |tx| {
            if let Some(key) = &key {
                if let Some(answer) = find(tx.conn(), key, &fingerprint)? {
                    return Ok((answer, true));
                }
            }
            let answer = write(tx)?;
            if let Some(key) = &key {
                keep(tx.conn(), key, &fingerprint, &answer)?;
            }
            Ok((answer, false))
        })
        .await
}

/// The same on PostgreSQL, in a transaction the app holds.
pub mod postgres {
    use tokio_postgres::GenericClient;

    use super::{Fingerprint, IdempotencyKey, StoredAnswer};
    use crate::store::postgres::{schema::COMMIT_LOCK, store_error};
    use crate::store::{StoreError, StoreResult};

    /// Takes the commit lock, before [`find`]: a duplicate on another node waits for this
    /// transaction to commit, then finds the key.
    pub async fn lock(tx: &impl GenericClient) -> StoreResult<()> {
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&COMMIT_LOCK])
            .await
            .map_err(store_error)?;
        Ok(())
    }

    /// The answer kept for `key`, if any; [`StoreError::IdempotencyConflict`] when it was kept
    /// for another request.
    pub async fn find(
        tx: &impl GenericClient,
        key: &IdempotencyKey,
        fingerprint: &Fingerprint,
    ) -> StoreResult<Option<StoredAnswer>> {
        let row = tx
            .query_opt(
                "SELECT request, status, headers, body FROM nudge_idempotency WHERE key = $1",
                &[&key.as_str()],
            )
            .await
            .map_err(store_error)?;
        let Some(row) = row else { return Ok(None) };
        let request: Vec<u8> = row.get(0);
        if request != fingerprint.0 {
            return Err(StoreError::IdempotencyConflict);
        }
        let status: i32 = row.get(1);
        let headers: String = row.get(2);
        Ok(Some(StoredAnswer::from_columns(
            i64::from(status),
            &headers,
            row.get(3),
        )))
    }

    /// Keeps `answer` as the one for `key`.
    pub async fn keep(
        tx: &impl GenericClient,
        key: &IdempotencyKey,
        fingerprint: &Fingerprint,
        answer: &StoredAnswer,
    ) -> StoreResult<()> {
        tx.execute(
            "INSERT INTO nudge_idempotency (key, request, status, headers, body, created_at) \
             VALUES ($1, $2, $3, $4, $5, nudge_now_ms())",
            &[
                &key.as_str(),
                &&fingerprint.0[..],
                &i32::from(answer.status),
                &answer.headers_json(),
                &answer.body,
            ],
        )
        .await
        .map_err(store_error)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_printable_ascii_of_bounded_length() {
        assert!(IdempotencyKey::parse("a-b_c.1").is_ok());
        assert!(IdempotencyKey::parse("").is_err());
        assert!(IdempotencyKey::parse("with space").is_err());
        assert!(IdempotencyKey::parse(&"k".repeat(MAX_KEY_LEN)).is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(MAX_KEY_LEN + 1)).is_err());
    }

    #[test]
    fn an_answer_keeps_only_the_headers_that_matter() {
        let answer = StoredAnswer::json(
            StatusCode::CREATED,
            &[
                ("Location", "/x/1".to_owned()),
                ("Set-Cookie", "a=b".to_owned()),
            ],
            &serde_json::json!({"id": 1}),
        )
        .unwrap();
        assert_eq!(answer.status, 201);
        assert!(answer.headers.contains(&("location".into(), "/x/1".into())));
        assert!(!answer.headers.iter().any(|(n, _)| n == "set-cookie"));
        let json = answer.headers_json();
        assert_eq!(
            StoredAnswer::from_columns(201, &json, vec![]).headers,
            answer.headers
        );
    }
}
