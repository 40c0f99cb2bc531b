//! Web Push end to end on the server side: a real nudge on SQLite, its real HTTP endpoints, and
//! a push service of the test's own on a loopback port that records every push, answers as it
//! is told, and decrypts each payload with the subscription's private key, as a browser would.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use nudge::push::PushSettings;
use nudge::{ApiError, Audience, Credentials, Nudge, Readers, Settings, Viewer};
use serde_json::{json, Value};
use web_push_native::p256;

/// `private/{name}` is for `{name}` alone; the principal is the `user` cookie.
struct PerUser;

#[async_trait::async_trait]
impl Audience for PerUser {
    async fn identify(&self, credentials: &Credentials) -> Result<Viewer, ApiError> {
        Ok(credentials
            .cookie("user")
            .map(Viewer::signed_in)
            .unwrap_or_default())
    }

    fn readers(&self, topic: &str) -> Readers {
        match topic.strip_prefix("private/") {
            Some(owner) => {
                let owner = owner.to_owned();
                Readers::only(move |who| who == Some(owner.as_str()))
            }
            None => Readers::Anyone,
        }
    }
}

/// A push as the push service received it.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

/// Answers scripted per path: a status and a `Retry-After` in seconds.
type Script = HashMap<String, VecDeque<(u16, Option<u64>)>>;

/// The test's push service: records what arrives, answers each path as scripted (201 unless
/// told otherwise).
#[derive(Clone, Default)]
struct PushService {
    received: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<Script>>,
    /// When set, every answer waits for a permit: a push service as slow as the test wants.
    gate: Option<Arc<tokio::sync::Semaphore>>,
}

impl PushService {
    async fn start(&self) -> String {
        let state = self.clone();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = actix_web::HttpServer::new(move || {
            actix_web::App::new()
                .app_data(web::Data::new(state.clone()))
                .default_service(web::to(receive))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        format!("http://{addr}")
    }

    fn answer(&self, path: &str, status: u16, retry_after: Option<u64>) {
        self.script
            .lock()
            .unwrap()
            .entry(path.to_owned())
            .or_default()
            .push_back((status, retry_after));
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Waits (bounded) until `n` pushes arrived in all.
    async fn until(&self, n: usize) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{n} pushes within 15 s; got {got:#?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn receive(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<PushService>,
) -> HttpResponse {
    let path = req.path().to_owned();
    let headers = req
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    state.received.lock().unwrap().push(Received {
        path: path.clone(),
        headers,
        body: body.to_vec(),
    });
    if let Some(gate) = &state.gate {
        let _ = gate.acquire().await.map(|p| p.forget());
    }
    let scripted = state
        .script
        .lock()
        .unwrap()
        .get_mut(&path)
        .and_then(VecDeque::pop_front);
    let (status, retry_after) = scripted.unwrap_or((201, None));
    let mut response = HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap());
    if let Some(secs) = retry_after {
        response.insert_header(("Retry-After", secs.to_string()));
    }
    response.finish()
}

/// A browser's side of one subscription: its keys, to decrypt what it receives.
struct Browser {
    secret: p256::SecretKey,
    auth: [u8; 16],
    endpoint: String,
}

impl Browser {
    fn new(endpoint: String) -> Self {
        let secret = loop {
            if let Ok(key) = p256::SecretKey::from_slice(&rand::random::<[u8; 32]>()) {
                break key;
            }
        };
        Self {
            secret,
            auth: rand::random(),
            endpoint,
        }
    }

    fn subscription(&self) -> Value {
        let public = self.secret.public_key();
        let point = p256::EncodedPoint::from(public);
        json!({
            "endpoint": self.endpoint,
            "expirationTime": null,
            "keys": {
                "p256dh": URL_SAFE_NO_PAD.encode(point.as_bytes()),
                "auth": URL_SAFE_NO_PAD.encode(self.auth),
            }
        })
    }

    /// The push's payload, decrypted with the subscription's keys twice: by the crate the
    /// server encrypts with, and by this test's own reading of RFC 8291; both must agree.
    fn decrypt(&self, push: &Received) -> Value {
        let auth = web_push_native::Auth::clone_from_slice(&self.auth);
        let plain = web_push_native::decrypt(push.body.clone(), &self.secret, &auth)
            .expect("the push decrypts with the subscription's keys");
        let own = decrypt_independently(&push.body, &self.secret, &self.auth);
        assert_eq!(own, plain, "two implementations read the same payload");
        serde_json::from_slice(&own).unwrap()
    }
}

struct Server {
    nudge: Nudge,
    base: String,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start() -> Self {
        Self::start_with(Arc::new(PerUser)).await
    }

    async fn start_with(audience: Arc<dyn Audience>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut push = PushSettings::new("mailto:test@example.com", dir.path().join("vapid.pem"));
        push.allow_local_http = true;
        let nudge = Nudge::builder()
            .sqlite(dir.path())
            .settings(Settings {
                push: Some(push),
                max_streams_per_address: 0,
                stream_open_rate_per_address: 0,
                ..Settings::default()
            })
            .audience(audience)
            .build()
            .await
            .unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let app = nudge.clone();
        let server = nudge::serve(&nudge, listener, None, move || app.app()).unwrap();
        tokio::spawn(server);
        Self {
            nudge,
            base,
            client: reqwest::Client::new(),
            _dir: dir,
        }
    }

    async fn subscribe(&self, body: Value, user: Option<&str>) -> reqwest::Response {
        let mut request = self
            .client
            .post(format!("{}/api/push/subscriptions", self.base))
            .json(&body);
        if let Some(user) = user {
            request = request.header("cookie", format!("user={user}"));
        }
        request.send().await.unwrap()
    }

    async fn metric(&self, name: &str) -> f64 {
        let text = self
            .client
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    }
}

/// The `Authorization: vapid t=<JWT>, k=<key>` of a push (RFC 8292): `k` is the key pages
/// subscribe with, and the JWT is signed with it (ES256) for the push service's origin, by the
/// configured contact, and expires within a day.
async fn assert_vapid(server: &Server, push_service: &str, authorization: &str) {
    use web_push_native::jwt_simple::algorithms::{ECDSAP256PublicKeyLike, ES256PublicKey};
    use web_push_native::jwt_simple::prelude::{NoCustomClaims, VerificationOptions};
    let rest = authorization
        .strip_prefix("vapid ")
        .expect("the vapid scheme");
    let part = |name: &str| {
        rest.split(',')
            .map(str::trim)
            .find_map(|p| p.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("{name}= in {authorization}"))
            .to_owned()
    };
    let (token, key) = (part("t"), part("k"));
    let served: Value = server
        .client
        .get(format!("{}/api/push/key", server.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        key,
        served["publicKey"].as_str().unwrap(),
        "k is the served key"
    );
    let public = ES256PublicKey::from_bytes(&URL_SAFE_NO_PAD.decode(&key).unwrap()).unwrap();
    // The push service's origin. web-push-native leaves a port out of it, which a push
    // service on its default port (all of them) never has.
    let origin = push_service
        .rsplit_once(':')
        .map_or(push_service, |(o, _)| o);
    let options = VerificationOptions {
        allowed_audiences: Some([origin.to_owned()].into()),
        ..VerificationOptions::default()
    };
    let claims = public
        .verify_token::<NoCustomClaims>(&token, Some(options))
        .expect("signed by the served key, for the push service's origin, not expired");
    assert_eq!(claims.subject.as_deref(), Some("mailto:test@example.com"));
    let expires = claims.expires_at.expect("an expiry").as_secs();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        expires > now && expires <= now + 24 * 3600,
        "expires within a day"
    );
}

async fn error_code(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    (
        status,
        body["error"]["code"].as_str().unwrap_or("").to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_is_served_and_bad_subscriptions_are_refused_with_json() {
    let server = Server::start().await;
    let key: Value = server
        .client
        .get(format!("{}/api/push/key", server.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = URL_SAFE_NO_PAD
        .decode(key["publicKey"].as_str().unwrap())
        .unwrap();
    assert_eq!((key.len(), key[0]), (65, 4), "an uncompressed P-256 point");

    let good = Browser::new("https://push.example/a".into()).subscription();
    let with = |f: &dyn Fn(&mut Value)| {
        let mut body = json!({ "subscription": good.clone(), "topics": ["todos"] });
        f(&mut body);
        body
    };
    let cases: Vec<(Value, &str)> = vec![
        (
            with(&|b| b["subscription"]["endpoint"] = json!("http://push.example/a")),
            "invalid_endpoint",
        ),
        (
            with(&|b| b["subscription"]["keys"]["auth"] = json!("AAAA")),
            "invalid_subscription_key",
        ),
        (
            with(&|b| {
                b["subscription"]["keys"]["p256dh"] = json!(URL_SAFE_NO_PAD.encode([7u8; 65]))
            }),
            "invalid_subscription_key",
        ),
        (with(&|b| b["extra"] = json!(1)), "bad_request"),
        (with(&|b| b["topics"] = json!([])), "missing_topic"),
        (
            with(&|b| b["topics"] = json!(["private/ann"])),
            "not_signed_in",
        ),
    ];
    for (body, code) in cases {
        let (status, got) = error_code(server.subscribe(body.clone(), None).await).await;
        assert!((400..500).contains(&status), "{body}: {status}");
        assert_eq!(got, code, "{body}");
    }
    let (status, code) = error_code(
        server
            .subscribe(with(&|b| b["topics"] = json!(["private/ann"])), Some("bob"))
            .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (403, "forbidden"));
    assert_eq!(server.subscribe(with(&|_| {}), None).await.status(), 201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_is_pushed_encrypted_light_and_only_to_matching_subscriptions() {
    let service = PushService::default();
    let base = service.start().await;
    let server = Server::start().await;
    let todos = Browser::new(format!("{base}/todos"));
    let lists = Browser::new(format!("{base}/lists"));
    let body =
        |b: &Browser, topics: Value| json!({ "subscription": b.subscription(), "topics": topics });
    assert_eq!(
        server
            .subscribe(body(&todos, json!(["todos"])), None)
            .await
            .status(),
        201
    );
    assert_eq!(
        server
            .subscribe(body(&lists, json!(["lists/*"])), None)
            .await
            .status(),
        201
    );

    let id = server.nudge.changed("todos", "/api/todos").await.unwrap();
    let got = service.until(1).await;
    let push = &got[0];
    assert_eq!(push.path, "/todos");
    assert_eq!(push.headers["content-encoding"], "aes128gcm");
    assert_eq!(push.headers["urgency"], "normal");
    assert_eq!(
        push.headers["topic"],
        nudge::push::send::topic_header("todos")
    );
    assert!(push.headers["ttl"].parse::<u64>().unwrap() > 0);
    assert_vapid(&server, &base, &push.headers["authorization"]).await;
    assert_eq!(
        todos.decrypt(push),
        json!({ "changes": [{ "url": "/api/todos", "topic": "todos", "etag": format!("\"{id}\"") }] }),
        "only what changed, never the data"
    );

    server
        .nudge
        .changed("lists/x", "/api/lists/x")
        .await
        .unwrap();
    let got = service.until(2).await;
    assert_eq!(got[1].path, "/lists");
    assert_eq!(lists.decrypt(&got[1])["changes"][0]["topic"], "lists/x");
    assert_eq!(service.received().len(), 2, "nobody else was pushed");
    assert_eq!(server.metric("nudge_pushes_sent_total").await, 2.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_principal_that_may_no_longer_read_gets_nothing() {
    let service = PushService::default();
    let base = service.start().await;
    let server = Server::start().await;
    let ann = Browser::new(format!("{base}/ann"));
    let bob = Browser::new(format!("{base}/bob"));
    let sub = |b: &Browser| json!({ "subscription": b.subscription(), "topics": ["private/*"] });
    assert_eq!(server.subscribe(sub(&ann), Some("ann")).await.status(), 201);
    assert_eq!(server.subscribe(sub(&bob), Some("bob")).await.status(), 201);
    server
        .nudge
        .changed("private/ann", "/api/ann")
        .await
        .unwrap();
    server
        .nudge
        .changed("private/bob", "/api/bob")
        .await
        .unwrap();
    let got = service.until(2).await;
    let mut paths: Vec<_> = got.iter().map(|r| r.path.as_str()).collect();
    paths.sort();
    assert_eq!(
        paths,
        ["/ann", "/bob"],
        "each their own, nobody the other's"
    );
    for push in &got {
        let (browser, topic) = match push.path.as_str() {
            "/ann" => (&ann, "private/ann"),
            _ => (&bob, "private/bob"),
        };
        assert_eq!(browser.decrypt(push)["changes"][0]["topic"], topic);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gone_subscription_is_removed_and_a_busy_service_is_retried() {
    let service = PushService::default();
    let base = service.start().await;
    let server = Server::start().await;
    let gone = Browser::new(format!("{base}/gone"));
    let busy = Browser::new(format!("{base}/busy"));
    service.answer("/gone", 410, None);
    service.answer("/busy", 429, Some(1));
    for b in [&gone, &busy] {
        let body = json!({ "subscription": b.subscription(), "topics": ["todos"] });
        assert_eq!(server.subscribe(body, None).await.status(), 201);
    }
    server.nudge.changed("todos", "/api/todos").await.unwrap();
    // gone once (410), busy twice (429, then 201 after Retry-After).
    let got = service.until(3).await;
    let count = |p: &str| got.iter().filter(|r| r.path == p).count();
    assert_eq!((count("/gone"), count("/busy")), (1, 2));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while server
        .metric("nudge_push_subscriptions_removed_total")
        .await
        < 1.0
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the gone subscription was removed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(server.metric("nudge_pushes_sent_total").await, 1.0);

    // The next change goes to the busy one only: the gone one is forgotten.
    server.nudge.changed("todos", "/api/todos").await.unwrap();
    let got = service.until(4).await;
    assert_eq!(got[3].path, "/busy");
    assert_eq!(server.metric("nudge_pushes_sent_total").await, 2.0);
    assert_eq!(
        service
            .received()
            .iter()
            .filter(|r| r.path == "/gone")
            .count(),
        1
    );
}

/// Members of `club/*` topics: who may read them changes while subscriptions stay.
#[derive(Default)]
struct Club(Mutex<std::collections::HashSet<String>>);

#[async_trait::async_trait]
impl Audience for Club {
    async fn identify(&self, credentials: &Credentials) -> Result<Viewer, ApiError> {
        Ok(credentials
            .cookie("user")
            .map(Viewer::signed_in)
            .unwrap_or_default())
    }

    fn readers(&self, topic: &str) -> Readers {
        if !topic.starts_with("club/") {
            return Readers::Anyone;
        }
        let members = self.0.lock().unwrap().clone();
        Readers::only(move |who| who.is_some_and(|w| members.contains(w)))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_whose_access_was_revoked_gets_nothing_more() {
    let service = PushService::default();
    let base = service.start().await;
    let club = Arc::new(Club::default());
    club.0.lock().unwrap().insert("ann".into());
    let server = Server::start_with(club.clone()).await;
    let ann = Browser::new(format!("{base}/ann"));
    let body = json!({ "subscription": ann.subscription(), "topics": ["club/news", "todos"] });
    assert_eq!(server.subscribe(body, Some("ann")).await.status(), 201);

    server
        .nudge
        .changed("club/news", "/club/news")
        .await
        .unwrap();
    let got = service.until(1).await;
    assert_eq!(ann.decrypt(&got[0])["changes"][0]["topic"], "club/news");

    // Revoked: the next change of the club's topic is not pushed to her; a public one is.
    club.0.lock().unwrap().remove("ann");
    server
        .nudge
        .changed("club/news", "/club/news")
        .await
        .unwrap();
    server.nudge.changed("todos", "/api/todos").await.unwrap();
    let got = service.until(2).await;
    let topics: Vec<Value> = got
        .iter()
        .map(|push| ann.decrypt(push)["changes"][0]["topic"].clone())
        .collect();
    assert_eq!(
        topics,
        [json!("club/news"), json!("todos")],
        "nothing more of the club"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_service_that_does_not_answer_does_not_slow_writes() {
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let service = PushService {
        gate: Some(gate.clone()),
        ..PushService::default()
    };
    let base = service.start().await;
    let server = Server::start().await;
    // Ten: what one address may subscribe at once.
    for n in 0..10 {
        let browser = Browser::new(format!("{base}/slow/{n}"));
        let body = json!({ "subscription": browser.subscription(), "topics": ["todos"] });
        assert_eq!(server.subscribe(body, None).await.status(), 201);
    }
    server.nudge.changed("todos", "/api/todos").await.unwrap();
    // Every push is now waiting for an answer that does not come ...
    service.until(10).await;
    // ... and writes go on being committed and answered all the same.
    let writes = async {
        for _ in 0..200 {
            server.nudge.changed("todos", "/api/todos").await.unwrap();
        }
    };
    tokio::time::timeout(Duration::from_secs(20), writes)
        .await
        .expect("200 writes while every push waits");
    assert_eq!(
        server.metric("nudge_pushes_sent_total").await,
        0.0,
        "none answered yet"
    );
    gate.add_permits(10_000);
}

/// RFC 8291's decryption written out here from the RFC (`aes128gcm` of RFC 8188, with keys from
/// the ECDH of the browser's key and the sender's, and the browser's auth secret), so that the
/// server's encryption is checked against an implementation other than the one it uses.
fn decrypt_independently(body: &[u8], ua_secret: &p256::SecretKey, auth: &[u8; 16]) -> Vec<u8> {
    use aes_gcm::aead::{Aead, KeyInit};
    use hkdf::Hkdf;
    use sha2::Sha256;

    // Header: salt (16), record size (4), key id length (1), key id: the sender's public key.
    let (salt, rest) = body.split_at(16);
    let (id_len, rest) = (rest[4] as usize, &rest[5..]);
    let (as_public, ciphertext) = rest.split_at(id_len);
    let as_public = p256::PublicKey::from_sec1_bytes(as_public).expect("the sender's key");
    let ua_public = p256::EncodedPoint::from(ua_secret.public_key());
    let shared = p256::ecdh::diffie_hellman(ua_secret.to_nonzero_scalar(), as_public.as_affine());

    let mut key_info = b"WebPush: info\0".to_vec();
    key_info.extend_from_slice(ua_public.as_bytes());
    key_info.extend_from_slice(p256::EncodedPoint::from(as_public).as_bytes());
    let mut ikm = [0u8; 32];
    Hkdf::<Sha256>::new(Some(auth), shared.raw_secret_bytes())
        .expand(&key_info, &mut ikm)
        .unwrap();
    let prk = Hkdf::<Sha256>::new(Some(salt), &ikm);
    let (mut cek, mut nonce) = ([0u8; 16], [0u8; 12]);
    prk.expand(b"Content-Encoding: aes128gcm\0", &mut cek)
        .unwrap();
    prk.expand(b"Content-Encoding: nonce\0", &mut nonce)
        .unwrap();
    let cipher = aes_gcm::Aes128Gcm::new_from_slice(&cek).unwrap();
    let mut record = cipher
        .decrypt(aes_gcm::Nonce::from_slice(&nonce), ciphertext)
        .expect("the record authenticates");
    // One record: the data, the last-record delimiter 2, then zero padding.
    while record.last() == Some(&0) {
        record.pop();
    }
    assert_eq!(record.pop(), Some(2), "the last record's delimiter");
    record
}
