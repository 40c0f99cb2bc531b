//! Accounts on every backend, cases of the [`Accounts`] trait: a name is one account whatever
//! its case, width or spacing (its key is unique), found by its key wherever a name is given,
//! and answered as registered; sessions start, live until their expiry or their end, and
//! retention removes the expired ones. Users registered before names had keys get theirs when
//! the store opens.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use watercooler::domain::UserName;
use watercooler::store::accounts::{AccountError, Accounts, NewSession, TokenHash};
use watercooler::store::{self, settings_with_buffer, Backend, Opened, Retention};

use crate::Fixture;

pub(crate) fn name(raw: &str) -> UserName {
    UserName::parse(raw).unwrap()
}

/// A session whose token hash is `byte` repeated, that never expires.
pub(crate) fn session(byte: u8) -> NewSession {
    session_until(byte, i64::MAX)
}

fn session_until(byte: u8, expires_at_ms: i64) -> NewSession {
    NewSession {
        token_hash: TokenHash([byte; 32]),
        expires_at_ms,
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The user of the live session `byte`, if it is live.
async fn user_of(f: &Fixture, byte: u8) -> Option<String> {
    f.accounts
        .session_user(TokenHash([byte; 32]))
        .await
        .unwrap()
        .map(|user| user.as_str().to_owned())
}

pub async fn names_are_one_account_by_key(f: Fixture) {
    let accounts = &f.accounts;
    accounts
        .register(&name("Ann Lee"), "hash-of-ann".into(), session(1))
        .await
        .unwrap();
    for same in ["ann lee", " ANN  LEE ", "Ａｎｎ Ｌｅｅ"] {
        let again = accounts
            .register(&name(same), "other".into(), session(2))
            .await;
        assert!(matches!(again, Err(AccountError::NameTaken)), "{same:?}");
    }
    let found = accounts
        .credentials(&name("ANN lee"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.name.as_str(), "Ann Lee", "the name as registered");
    assert_eq!(found.password_hash, "hash-of-ann");
    assert!(accounts.credentials(&name("Ann")).await.unwrap().is_none());

    accounts
        .start_session(&found.name, session(3))
        .await
        .unwrap();
    let user = accounts.session_user(TokenHash([3; 32])).await.unwrap();
    assert_eq!(user.as_ref().map(UserName::as_str), Some("Ann Lee"));
}

pub async fn registering_signs_the_user_in(f: Fixture) {
    let expires_at_ms = now_ms() + 3_600_000;
    f.accounts
        .register(
            &name("Ann"),
            "hash-of-ann".into(),
            session_until(1, expires_at_ms),
        )
        .await
        .unwrap();
    let live = f
        .accounts
        .live_session(TokenHash([1; 32]))
        .await
        .unwrap()
        .expect("the first session is live");
    assert_eq!(live.user.as_str(), "Ann");
    assert_eq!(live.expires_at_ms, expires_at_ms, "its expiry as given");
    assert_eq!(user_of(&f, 1).await.as_deref(), Some("Ann"));
    let found = f.accounts.credentials(&name("ann")).await.unwrap().unwrap();
    assert_eq!(
        (found.name.as_str(), found.password_hash.as_str()),
        ("Ann", "hash-of-ann")
    );
    assert!(f
        .accounts
        .credentials(&name("bob"))
        .await
        .unwrap()
        .is_none());
    assert_eq!(user_of(&f, 2).await, None, "an unknown token is no session");
}

pub async fn a_taken_name_registers_nothing(f: Fixture) {
    f.accounts
        .register(&name("ann"), "first".into(), session(1))
        .await
        .unwrap();
    let again = f
        .accounts
        .register(&name("ANN"), "second".into(), session(2))
        .await;
    assert!(matches!(again, Err(AccountError::NameTaken)), "{again:?}");
    assert_eq!(user_of(&f, 2).await, None, "no session for the refused one");
    let kept = f.accounts.credentials(&name("ann")).await.unwrap().unwrap();
    assert_eq!(kept.password_hash, "first", "the account is unchanged");
    assert_eq!(f.count_rows("users").await, 1);
    assert_eq!(f.count_rows("sessions").await, 1);
}

pub async fn sessions_start_and_end_one_at_a_time(f: Fixture) {
    let ann = name("ann");
    f.accounts
        .register(&ann, "h".into(), session(1))
        .await
        .unwrap();
    f.accounts.start_session(&ann, session(2)).await.unwrap();
    assert_eq!(user_of(&f, 1).await.as_deref(), Some("ann"));
    assert_eq!(user_of(&f, 2).await.as_deref(), Some("ann"));

    f.accounts.end_session(TokenHash([1; 32])).await.unwrap();
    assert_eq!(user_of(&f, 1).await, None, "ended");
    assert_eq!(
        user_of(&f, 2).await.as_deref(),
        Some("ann"),
        "the other lives"
    );
    assert!(f
        .accounts
        .live_session(TokenHash([1; 32]))
        .await
        .unwrap()
        .is_none());

    // Ending a session again, or one that never was, is no error and ends nothing else.
    f.accounts.end_session(TokenHash([1; 32])).await.unwrap();
    f.accounts.end_session(TokenHash([9; 32])).await.unwrap();
    assert_eq!(user_of(&f, 2).await.as_deref(), Some("ann"));
}

pub async fn a_session_needs_a_registered_user(f: Fixture) {
    let refused = f.accounts.start_session(&name("nobody"), session(1)).await;
    assert!(
        matches!(refused, Err(AccountError::NoSuchUser)),
        "{refused:?}"
    );
    assert_eq!(user_of(&f, 1).await, None);
    assert_eq!(f.count_rows("sessions").await, 0);
}

pub async fn a_session_past_its_expiry_is_not_live(f: Fixture) {
    let ann = name("ann");
    let past = now_ms() - 60_000;
    f.accounts
        .register(&ann, "h".into(), session_until(1, past))
        .await
        .unwrap();
    assert!(f
        .accounts
        .live_session(TokenHash([1; 32]))
        .await
        .unwrap()
        .is_none());
    assert_eq!(user_of(&f, 1).await, None);

    // A session that expires a moment from now (long enough for a loaded machine to ask) is
    // live, then not.
    let soon = now_ms() + 4_000;
    f.accounts
        .start_session(&ann, session_until(2, soon))
        .await
        .unwrap();
    assert_eq!(user_of(&f, 2).await.as_deref(), Some("ann"));
    while now_ms() <= soon {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(user_of(&f, 2).await, None, "past its expiry");
}

pub async fn retention_removes_expired_sessions_and_keeps_live_ones(f: Fixture) {
    let ann = name("ann");
    f.accounts
        .register(&ann, "h".into(), session(1))
        .await
        .unwrap();
    let past = now_ms() - 60_000;
    for byte in [2, 3] {
        f.accounts
            .start_session(&ann, session_until(byte, past))
            .await
            .unwrap();
    }
    assert_eq!(f.count_rows("sessions").await, 3, "expired rows are kept");

    f.store
        .prune(Retention {
            max_events: 1000,
            max_age_secs: 3600,
        })
        .await
        .unwrap();
    assert_eq!(
        f.count_rows("sessions").await,
        1,
        "retention removed the expired sessions"
    );
    assert_eq!(
        user_of(&f, 1).await.as_deref(),
        Some("ann"),
        "kept and live"
    );
}

/// Users as a store from before name keys holds them: `ann` registered after `Ann`, and a name
/// not in its normal form.
const USERS_WITHOUT_KEYS: &str = "
    INSERT INTO users (name, password_hash, created_at) VALUES
        ('ann', 'hash-of-younger-ann', 2),
        ('Ann', 'hash-of-older-ann', 1),
        ('Bob  Lee ', 'hash-of-bob', 3);
";

/// What the store, opened again, makes of [`USERS_WITHOUT_KEYS`].
async fn keys_were_filled_in(accounts: &dyn Accounts) {
    let ann = accounts.credentials(&name("ANN")).await.unwrap().unwrap();
    assert_eq!(
        ann.name.as_str(),
        "Ann",
        "the older of two same names keeps it"
    );
    assert_eq!(ann.password_hash, "hash-of-older-ann");
    let bob = accounts
        .credentials(&name("bob lee"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        bob.name.as_str(),
        "Bob  Lee ",
        "found by key, answered as registered"
    );
    let taken = accounts
        .register(&name("BOB LEE"), "h".into(), session(1))
        .await;
    assert!(matches!(taken, Err(AccountError::NameTaken)));
    accounts
        .register(&name("carol"), "h".into(), session(2))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_users_from_before_name_keys_get_them_when_the_store_opens() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite_at(dir.path()).await;
    store.store.close().await;
    drop(store);
    let conn = rusqlite::Connection::open(dir.path().join("nudge.sqlite3")).unwrap();
    conn.execute_batch(USERS_WITHOUT_KEYS).unwrap();
    drop(conn);
    let store = sqlite_at(dir.path()).await;
    keys_were_filled_in(&*store.accounts).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_users_from_before_name_keys_get_them_when_the_store_opens() {
    let url = crate::pg::Cluster::shared().fresh_database();
    let store = postgres_at(&url).await;
    store.store.close().await;
    drop(store);
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let connection = tokio::spawn(connection);
    client.batch_execute(USERS_WITHOUT_KEYS).await.unwrap();
    drop(client);
    let _ = connection.await;
    let store = postgres_at(&url).await;
    keys_were_filled_in(&*store.accounts).await;
}

async fn sqlite_at(dir: &std::path::Path) -> Opened {
    store::open(Backend::Sqlite(dir.to_owned()), settings_with_buffer(16))
        .await
        .unwrap()
}

async fn postgres_at(url: &str) -> Opened {
    store::open(Backend::Postgres(url.to_owned()), settings_with_buffer(16))
        .await
        .unwrap()
}
