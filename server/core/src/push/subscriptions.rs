//! Push subscriptions: the endpoints pages use to add and remove them, what a valid one is,
//! and where they are kept (`nudge_push_subscriptions`, in the log's database).
//!
//! - `GET /api/push/key`: `{"publicKey"}`, the VAPID key for `pushManager.subscribe`.
//! - `POST /api/push/subscriptions` `{"subscription": <PushSubscription.toJSON()>, "topics":
//!   ["todos", "lists/*"]}`: 201; the same endpoint again replaces its topics. Refused with a
//!   JSON 4xx: unknown fields, an endpoint that is not `https://`, keys of the wrong length or
//!   not a P-256 point, bad topics, an exact topic the caller may not read (401/403), more than
//!   the caller's share of subscriptions (409), too many requests from one address (429).
//! - `DELETE /api/push/subscriptions` `{"endpoint"}`: 204 (the endpoint, a secret only its
//!   browser and push service know, is the capability).

use std::net::IpAddr;
use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;
use serde_json::json;

use crate::audience::Credentials;
use crate::error::{self, ApiError};
use crate::limits::RateLimit;
use crate::store::postgres::{store_error, Pool, PostgresStore, Prepare};
use crate::store::sqlite::{now_ms, SqliteStore};
use crate::store::{StoreError, StoreResult};
use crate::topic::TopicSet;
use crate::Nudge;

/// Longest endpoint URL accepted.
const MAX_ENDPOINT_LEN: usize = 2048;

/// A subscription as kept.
#[derive(Debug, Clone)]
pub struct StoredSubscription {
    /// The push service's URL for this browser.
    pub endpoint: String,
    /// The browser's P-256 public key, uncompressed (65 bytes).
    pub p256dh: Vec<u8>,
    /// The browser's authentication secret (16 bytes).
    pub auth: Vec<u8>,
    /// Who made it (`None`: anonymous); asked about at every push.
    pub principal: Option<String>,
    /// What it wants pushes for.
    pub topics: TopicSet,
}

/// `PushSubscription.toJSON()`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Subscription {
    endpoint: String,
    #[serde(default)]
    expiration_time: Option<serde_json::Value>,
    keys: Keys,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Keys {
    p256dh: String,
    auth: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Subscribe {
    subscription: Subscription,
    topics: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Unsubscribe {
    endpoint: String,
}

/// What push needs at its endpoints.
pub(crate) struct PushState {
    pub(crate) keys: Arc<super::keys::VapidKeys>,
    pub(crate) store: Arc<SubscriptionStore>,
    pub(crate) settings: super::PushSettings,
    subscribes: Option<RateLimit<IpAddr>>,
}

impl PushState {
    pub(crate) fn new(
        keys: Arc<super::keys::VapidKeys>,
        store: Arc<SubscriptionStore>,
        settings: super::PushSettings,
    ) -> Self {
        Self {
            keys,
            store,
            settings,
            // A browser subscribes once and renews rarely: a few a minute per address is
            // plenty, and bounds what one address can make the server store.
            subscribes: RateLimit::per_second(1, 10),
        }
    }
}

/// Mounts the push endpoints.
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/api/push/key")
            .route(web::get().to(key))
            .default_service(web::route().to(error::method_not_allowed)),
    )
    .service(
        web::resource("/api/push/subscriptions")
            .route(web::post().to(subscribe))
            .route(web::delete().to(unsubscribe))
            .default_service(web::route().to(error::method_not_allowed)),
    );
}

fn push_of(nudge: &Nudge) -> Result<&PushState, ApiError> {
    nudge
        .push_state()
        .ok_or_else(|| ApiError::not_found("push_off", "Web Push is not configured"))
}

async fn key(nudge: web::Data<Nudge>) -> Result<HttpResponse, ApiError> {
    let push = push_of(&nudge)?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-cache"))
        .json(json!({ "publicKey": push.keys.public_base64() })))
}

async fn subscribe(
    req: HttpRequest,
    body: web::Json<Subscribe>,
    nudge: web::Data<Nudge>,
) -> Result<HttpResponse, ApiError> {
    let push = push_of(&nudge)?;
    if let (Some(limit), Some(ip)) = (&push.subscribes, nudge.limits().client_ip(&req)) {
        limit.take(
            &ip,
            "too_many_subscribes",
            "too many push subscriptions from this address; wait",
        )?;
    }
    let Subscribe {
        subscription,
        topics,
    } = body.into_inner();
    let _ = subscription.expiration_time;
    check_endpoint(&subscription.endpoint, push.settings.allow_local_http)?;
    let p256dh = decode_key(&subscription.keys.p256dh, "p256dh", 65)?;
    if web_push_native::p256::PublicKey::from_sec1_bytes(&p256dh).is_err() {
        return Err(invalid_key("p256dh is not a P-256 public key"));
    }
    let auth = decode_key(&subscription.keys.auth, "auth", 16)?;
    let topics = TopicSet::parse(topics.iter().map(String::as_str))?;
    let audience = nudge.hub().audience().clone();
    let viewer = audience.identify(&Credentials::from_request(&req)).await?;
    let principal = viewer.principal.as_deref();
    if topics.exact().any(|t| !audience.may_read(principal, t)) {
        return Err(crate::audience::refusal(principal));
    }
    let stored = StoredSubscription {
        endpoint: subscription.endpoint,
        p256dh,
        auth,
        principal: principal.map(str::to_owned),
        topics,
    };
    push.store.add(stored, &push.settings).await?;
    Ok(HttpResponse::Created()
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({ "subscribed": true })))
}

async fn unsubscribe(
    body: web::Json<Unsubscribe>,
    nudge: web::Data<Nudge>,
) -> Result<HttpResponse, ApiError> {
    let push = push_of(&nudge)?;
    push.store.forget(&body.endpoint).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// An endpoint is an `https://` URL with a host (or, for tests, `http://` on loopback).
fn check_endpoint(endpoint: &str, allow_local_http: bool) -> Result<(), ApiError> {
    let refuse = |why: &str| ApiError::invalid("invalid_endpoint", why);
    if endpoint.len() > MAX_ENDPOINT_LEN {
        return Err(refuse("the endpoint is too long"));
    }
    let uri: actix_web::http::Uri = endpoint
        .parse()
        .map_err(|_| refuse("the endpoint is not a URL"))?;
    let host = uri
        .host()
        .ok_or_else(|| refuse("the endpoint has no host"))?;
    match uri.scheme_str() {
        Some("https") if host == "localhost" || literal_ip(host).is_some_and(is_internal) => Err(
            refuse("the endpoint must be a push service, not an internal address"),
        ),
        Some("https") => Ok(()),
        Some("http") if allow_local_http && is_loopback(host) => Ok(()),
        _ => Err(refuse("the endpoint must be an https:// URL")),
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost" || literal_ip(host).is_some_and(|ip| ip.is_loopback())
}

fn literal_ip(host: &str) -> Option<IpAddr> {
    host.trim_matches(|c| c == '[' || c == ']').parse().ok()
}

/// Whether an address is this machine's or its network's: a push to it would make the server
/// a way into places a browser's push service never is.
fn is_internal(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
        }
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || (v6.segments()[0] & 0xffc0) == 0xfe80
        }
    }
}

fn invalid_key(message: &str) -> ApiError {
    ApiError::invalid("invalid_subscription_key", message)
}

fn decode_key(text: &str, name: &str, len: usize) -> Result<Vec<u8>, ApiError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .map_err(|_| invalid_key(&format!("{name} is not base64url")))?;
    if bytes.len() != len {
        return Err(invalid_key(&format!("{name} must be {len} bytes")));
    }
    Ok(bytes)
}

/// Where subscriptions are kept: the log's own database.
pub(crate) enum Backend {
    Sqlite(Arc<SqliteStore>),
    Postgres(Pool<Plain>),
}

/// The subscriptions, with a count of the changes made through this node (the sender reads
/// them again when it moves, and every few seconds for changes made on other nodes).
pub(crate) struct SubscriptionStore {
    backend: Backend,
    changes: std::sync::atomic::AtomicU64,
}

/// A pooled PostgreSQL connection with nothing prepared.
pub(crate) struct Plain(tokio_postgres::Client);

impl Prepare for Plain {
    async fn prepare(client: tokio_postgres::Client) -> StoreResult<Self> {
        Ok(Self(client))
    }

    fn client(&self) -> &tokio_postgres::Client {
        &self.0
    }
}

fn too_many(message: &str) -> ApiError {
    ApiError::client(StatusCode::CONFLICT, "too_many_subscriptions", message)
}

fn decode_row(
    endpoint: String,
    p256dh: Vec<u8>,
    auth: Vec<u8>,
    principal: Option<String>,
    topics: String,
) -> Option<StoredSubscription> {
    let topics: Vec<String> = serde_json::from_str(&topics).ok()?;
    Some(StoredSubscription {
        endpoint,
        p256dh,
        auth,
        principal,
        topics: TopicSet::parse(topics.iter().map(String::as_str)).ok()?,
    })
}

impl SubscriptionStore {
    pub(crate) fn sqlite(store: Arc<SqliteStore>) -> Self {
        Self::over(Backend::Sqlite(store))
    }

    pub(crate) fn postgres(store: &PostgresStore) -> Self {
        Self::over(Backend::Postgres(Pool::new(store.connector())))
    }

    fn over(backend: Backend) -> Self {
        Self {
            backend,
            changes: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// How many changes were made through this node.
    pub(crate) fn changes(&self) -> u64 {
        self.changes.load(std::sync::atomic::Ordering::Acquire)
    }

    fn changed(&self) {
        self.changes
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    /// Keeps `sub` (replacing the topics of the same endpoint), within the caps.
    async fn add(
        &self,
        sub: StoredSubscription,
        settings: &super::PushSettings,
    ) -> Result<(), ApiError> {
        let topics = serde_json::to_string(&sub.topics.selectors())
            .map_err(|e| StoreError::Database(e.to_string()))?;
        let (per_principal, total) = (
            settings.max_per_principal as i64,
            settings.max_subscriptions as i64,
        );
        let added = match &self.backend {
            Backend::Sqlite(store) => {
                store
                    .write(move |tx| {
                        let conn = tx.conn();
                        let known: bool = conn
                            .prepare_cached(
                                "SELECT count(*) FROM nudge_push_subscriptions WHERE endpoint = ?1",
                            )?
                            .query_row([&sub.endpoint], |r| r.get::<_, i64>(0))?
                            > 0;
                        if !known {
                            let (mine, all): (i64, i64) = conn
                                .prepare_cached(
                                    "SELECT count(*) FILTER (WHERE principal IS ?1), count(*) \
                                     FROM nudge_push_subscriptions",
                                )?
                                .query_row([&sub.principal], |r| Ok((r.get(0)?, r.get(1)?)))?;
                            if mine >= per_principal {
                                return Err(too_many("remove a subscription first"));
                            }
                            if all >= total {
                                return Err(too_many(
                                    "the server holds all the subscriptions it may",
                                ));
                            }
                        }
                        conn.prepare_cached(
                            "INSERT INTO nudge_push_subscriptions \
                             (endpoint, p256dh, auth, principal, topics, created_at) \
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                             ON CONFLICT (endpoint) DO UPDATE SET p256dh = excluded.p256dh, \
                             auth = excluded.auth, principal = excluded.principal, \
                             topics = excluded.topics",
                        )?
                        .execute(rusqlite::params![
                            sub.endpoint,
                            sub.p256dh,
                            sub.auth,
                            sub.principal,
                            topics,
                            now_ms()
                        ])
                        .map_err(StoreError::from)?;
                        Ok(())
                    })
                    .await
            }
            Backend::Postgres(pool) => {
                let conn = pool.get().await?;
                let client = conn.client();
                let counts = client
                    .query_one(
                        "SELECT count(*) FILTER (WHERE principal IS NOT DISTINCT FROM $1), \
                         count(*), count(*) FILTER (WHERE endpoint = $2) \
                         FROM nudge_push_subscriptions",
                        &[&sub.principal, &sub.endpoint],
                    )
                    .await
                    .map_err(store_error)?;
                let (mine, all, known): (i64, i64, i64) =
                    (counts.get(0), counts.get(1), counts.get(2));
                if known == 0 && mine >= per_principal {
                    return Err(too_many("remove a subscription first"));
                }
                if known == 0 && all >= total {
                    return Err(too_many("the server holds all the subscriptions it may"));
                }
                client
                    .execute(
                        "INSERT INTO nudge_push_subscriptions \
                         (endpoint, p256dh, auth, principal, topics, created_at) \
                         VALUES ($1, $2, $3, $4, $5, nudge_now_ms()) \
                         ON CONFLICT (endpoint) DO UPDATE SET p256dh = excluded.p256dh, \
                         auth = excluded.auth, principal = excluded.principal, \
                         topics = excluded.topics",
                        &[
                            &sub.endpoint,
                            &sub.p256dh,
                            &sub.auth,
                            &sub.principal,
                            &topics,
                        ],
                    )
                    .await
                    .map_err(store_error)?;
                Ok(())
            }
        };
        self.changed();
        added
    }

    /// Forgets the subscription of `endpoint` (unsubscribed, or gone at its push service).
    pub(crate) async fn forget(&self, endpoint: &str) -> StoreResult<()> {
        let forgotten = self.forget_from_backend(endpoint).await;
        self.changed();
        forgotten
    }

    async fn forget_from_backend(&self, endpoint: &str) -> StoreResult<()> {
        match &self.backend {
            Backend::Sqlite(store) => {
                let endpoint = endpoint.to_owned();
                store
                    .write(move |tx| {
                        tx.conn()
                            .prepare_cached(
                                "DELETE FROM nudge_push_subscriptions WHERE endpoint = ?1",
                            )?
                            .execute([endpoint])?;
                        Ok(())
                    })
                    .await
            }
            Backend::Postgres(pool) => {
                pool.get()
                    .await?
                    .client()
                    .execute(
                        "DELETE FROM nudge_push_subscriptions WHERE endpoint = $1",
                        &[&endpoint],
                    )
                    .await
                    .map_err(store_error)?;
                Ok(())
            }
        }
    }

    /// Every subscription (at most the configured cap).
    pub(crate) async fn all(&self) -> StoreResult<Vec<StoredSubscription>> {
        const SQL: &str = "SELECT endpoint, p256dh, auth, principal, topics \
                           FROM nudge_push_subscriptions";
        match &self.backend {
            Backend::Sqlite(store) => {
                store
                    .read(|tx| {
                        let mut stmt = tx.prepare_cached(SQL)?;
                        let rows = stmt.query_map([], |r| {
                            Ok(decode_row(
                                r.get(0)?,
                                r.get(1)?,
                                r.get(2)?,
                                r.get(3)?,
                                r.get(4)?,
                            ))
                        })?;
                        let mut all = Vec::new();
                        for row in rows {
                            all.extend(row?);
                        }
                        Ok(all)
                    })
                    .await
            }
            Backend::Postgres(pool) => {
                let rows = pool
                    .get()
                    .await?
                    .client()
                    .query(SQL, &[])
                    .await
                    .map_err(store_error)?;
                Ok(rows
                    .into_iter()
                    .filter_map(|r| decode_row(r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
                    .collect())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_endpoints_or_local_http_in_tests() {
        assert!(check_endpoint("https://push.example/abc", false).is_ok());
        assert!(check_endpoint("http://push.example/abc", false).is_err());
        assert!(check_endpoint("http://127.0.0.1:9/abc", false).is_err());
        assert!(check_endpoint("http://127.0.0.1:9/abc", true).is_ok());
        assert!(check_endpoint("http://push.example/abc", true).is_err());
        assert!(check_endpoint("ftp://push.example/abc", false).is_err());
        assert!(check_endpoint("not a url", false).is_err());
        for internal in [
            "https://127.0.0.1/x",
            "https://10.1.2.3/x",
            "https://192.168.0.1/x",
            "https://169.254.169.254/latest",
            "https://[::1]/x",
            "https://[fd00::1]/x",
            "https://localhost/x",
        ] {
            assert!(check_endpoint(internal, false).is_err(), "{internal}");
        }
        assert!(check_endpoint(&format!("https://a/{}", "x".repeat(3000)), false).is_err());
    }

    #[test]
    fn keys_must_have_their_length() {
        assert!(decode_key(&URL_SAFE_NO_PAD.encode([1u8; 16]), "auth", 16).is_ok());
        assert!(decode_key(&URL_SAFE_NO_PAD.encode([1u8; 15]), "auth", 16).is_err());
        assert!(decode_key("%%%", "auth", 16).is_err());
    }
}
