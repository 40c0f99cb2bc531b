//! Accounts on every backend: a name is one account whatever its case, width or spacing (its
//! key is unique), found by its key wherever a name is given, and answered as registered; users
//! registered before names had keys get theirs when the store opens.

use watercooler::domain::{RoomName, UserName};
use watercooler::store::accounts::{AccountError, Accounts, NewSession, TokenHash};
use watercooler::store::{self, settings_with_buffer, Backend, Opened};

use crate::Fixture;

fn name(raw: &str) -> UserName {
    UserName::parse(raw).unwrap()
}

fn session(byte: u8) -> NewSession {
    NewSession {
        token_hash: TokenHash([byte; 32]),
        expires_at_ms: i64::MAX,
    }
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

pub async fn members_are_found_by_key(f: Fixture) {
    let accounts = &f.accounts;
    let room = RoomName::parse("secret").unwrap();
    accounts
        .register(&name("ann"), "h".into(), session(1))
        .await
        .unwrap();
    accounts
        .register(&name("Zoë/B"), "h".into(), session(2))
        .await
        .unwrap();
    assert!(accounts
        .create_private_room(&room, &name("ann"))
        .await
        .unwrap());
    accounts
        .add_member(&room, &name("ann"), &name("ZOË/b"))
        .await
        .unwrap();
    let access = &f.access;
    assert!(
        access.may_read_room("secret", Some("Zoë/B")),
        "stored as registered"
    );
    let nobody = accounts
        .add_member(&room, &name("ann"), &name("zoe/b"))
        .await;
    assert!(matches!(nobody, Err(AccountError::NoSuchUser)));
    accounts
        .remove_member(&room, &name("ann"), &name(" zoë/b "))
        .await
        .unwrap();
    assert!(!f.access.may_read_room("secret", Some("Zoë/B")));
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
