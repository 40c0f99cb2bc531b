//! Private rooms and their members on every backend, cases of the [`Accounts`] trait: who may
//! create, add and remove, every refusal, and the access view (what every read and delivery
//! asks) following each change as soon as the call answers. A change logs one event on
//! `rooms` and becomes the view's version; a refusal or a change that changes nothing logs
//! nothing.
//!
//! [`Accounts`]: watercooler::store::accounts::Accounts

use watercooler::domain::{RoomName, ROOMS_TOPIC};
use watercooler::store::accounts::AccountError;
use watercooler::topic::TopicSet;

use crate::accounts::{name, session};
use crate::Fixture;

fn room(raw: &str) -> RoomName {
    RoomName::parse(raw).unwrap()
}

/// Registers each of `names`, each with a session of its own.
async fn register(f: &Fixture, names: &[&str]) {
    for (byte, user) in (1..).zip(names) {
        f.accounts
            .register(&name(user), "h".into(), session(byte))
            .await
            .unwrap();
    }
}

/// Who of `users` (and an anonymous reader, as `-`) may read `room`, as the view says.
fn readers(f: &Fixture, room: &str, users: &[&str]) -> Vec<String> {
    let mut may = Vec::new();
    if f.access.may_read_room(room, None) {
        may.push("-".to_owned());
    }
    for user in users {
        if f.access.may_read_room(room, Some(user)) {
            may.push((*user).to_owned());
        }
    }
    may
}

/// The ids of the events logged on `rooms` so far.
async fn rooms_events(f: &Fixture) -> Vec<i64> {
    let topics = TopicSet::parse([ROOMS_TOPIC]).unwrap();
    let events = f.store.events_after(0, &topics).await.unwrap();
    events.iter().map(|e| e.id).collect()
}

/// Asserts that the last call logged exactly one event on `rooms` since `before`, and that the
/// view's version is that event.
async fn logged_one_change(f: &Fixture, before: &[i64]) -> Vec<i64> {
    let after = rooms_events(f).await;
    assert_eq!(after.len(), before.len() + 1, "one event: {after:?}");
    assert_eq!(&after[..before.len()], before);
    assert_eq!(
        f.access.version(),
        *after.last().unwrap(),
        "the view's version"
    );
    after
}

/// Asserts that nothing was logged since `before` and the view's version did not move.
async fn logged_nothing(f: &Fixture, before: &[i64], version: i64, what: &str) {
    assert_eq!(rooms_events(f).await, before, "{what}: nothing logged");
    assert_eq!(f.access.version(), version, "{what}: the view is as it was");
}

const USERS: [&str; 3] = ["ann", "bob", "carol"];

pub async fn a_private_room_is_for_its_members_from_its_creation(f: Fixture) {
    register(&f, &USERS).await;
    assert_eq!(readers(&f, "secret", &USERS), ["-", "ann", "bob", "carol"]);
    let before = rooms_events(&f).await;

    let created = f
        .accounts
        .create_private_room(&room("secret"), &name("ann"))
        .await
        .unwrap();
    assert!(created, "a new room");
    logged_one_change(&f, &before).await;
    assert!(f.access.is_private("secret"));
    assert_eq!(readers(&f, "secret", &USERS), ["ann"]);
    assert!(f.access.may_read_topic("rooms/secret", Some("ann")));
    assert!(!f.access.may_read_topic("rooms/secret", Some("bob")));
    let rooms = f.store.rooms().await.unwrap();
    assert!(rooms.iter().any(|r| r.name == "secret"), "a room like any");
    // Other rooms are as public as they were.
    assert_eq!(readers(&f, "general", &USERS), ["-", "ann", "bob", "carol"]);
}

pub async fn creating_a_private_room_again_is_idempotent_for_its_member_only(f: Fixture) {
    register(&f, &USERS).await;
    let secret = room("secret");
    f.accounts
        .create_private_room(&secret, &name("ann"))
        .await
        .unwrap();
    let (before, version) = (rooms_events(&f).await, f.access.version());

    // Its member asking again: the room is as asked, nothing to do.
    let again = f.accounts.create_private_room(&secret, &name("ann")).await;
    assert!(matches!(again, Ok(false)), "{again:?}");
    logged_nothing(&f, &before, version, "created again by its member").await;

    let other = f.accounts.create_private_room(&secret, &name("bob")).await;
    assert!(matches!(other, Err(AccountError::RoomExists)), "{other:?}");
    logged_nothing(&f, &before, version, "asked by a non-member").await;

    // A public room exists too: it does not become private, for anyone.
    let public = f
        .accounts
        .create_private_room(&room("general"), &name("ann"))
        .await;
    assert!(
        matches!(public, Err(AccountError::RoomExists)),
        "{public:?}"
    );
    assert!(f.store.create_room(&room("lobby")).await.unwrap());
    let (before, version) = (rooms_events(&f).await, f.access.version());
    let public = f
        .accounts
        .create_private_room(&room("lobby"), &name("ann"))
        .await;
    assert!(
        matches!(public, Err(AccountError::RoomExists)),
        "{public:?}"
    );
    logged_nothing(&f, &before, version, "a public room asked to be private").await;
    assert!(!f.access.is_private("general") && !f.access.is_private("lobby"));
    assert_eq!(readers(&f, "secret", &USERS), ["ann"]);
}

pub async fn a_private_room_needs_a_registered_creator(f: Fixture) {
    let (before, version) = (rooms_events(&f).await, f.access.version());
    let refused = f
        .accounts
        .create_private_room(&room("secret"), &name("nobody"))
        .await;
    assert!(
        matches!(refused, Err(AccountError::NoSuchUser)),
        "{refused:?}"
    );
    logged_nothing(&f, &before, version, "a creator who is nobody").await;
    assert!(!f.access.is_private("secret"));
    let rooms = f.store.rooms().await.unwrap();
    assert!(rooms.iter().all(|r| r.name != "secret"), "no room was made");
}

pub async fn members_are_added_and_removed_and_the_view_follows(f: Fixture) {
    register(&f, &USERS).await;
    let secret = room("secret");
    f.accounts
        .create_private_room(&secret, &name("ann"))
        .await
        .unwrap();
    let events = rooms_events(&f).await;

    f.accounts
        .add_member(&secret, &name("ann"), &name("bob"))
        .await
        .unwrap();
    let events = logged_one_change(&f, &events).await;
    assert_eq!(readers(&f, "secret", &USERS), ["ann", "bob"]);

    // Any member adds and removes, not only the creator.
    f.accounts
        .add_member(&secret, &name("bob"), &name("carol"))
        .await
        .unwrap();
    let events = logged_one_change(&f, &events).await;
    assert_eq!(readers(&f, "secret", &USERS), ["ann", "bob", "carol"]);

    f.accounts
        .remove_member(&secret, &name("carol"), &name("ann"))
        .await
        .unwrap();
    let events = logged_one_change(&f, &events).await;
    assert_eq!(readers(&f, "secret", &USERS), ["bob", "carol"]);

    // A member may leave; the last one leaves the room private, for nobody.
    f.accounts
        .remove_member(&secret, &name("bob"), &name("bob"))
        .await
        .unwrap();
    let events = logged_one_change(&f, &events).await;
    f.accounts
        .remove_member(&secret, &name("carol"), &name("carol"))
        .await
        .unwrap();
    logged_one_change(&f, &events).await;
    assert!(f.access.is_private("secret"));
    assert!(readers(&f, "secret", &USERS).is_empty());
}

pub async fn members_are_found_by_key(f: Fixture) {
    let accounts = &f.accounts;
    let room = room("secret");
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

pub async fn adding_or_removing_again_changes_nothing(f: Fixture) {
    register(&f, &USERS).await;
    let secret = room("secret");
    f.accounts
        .create_private_room(&secret, &name("ann"))
        .await
        .unwrap();
    f.accounts
        .add_member(&secret, &name("ann"), &name("bob"))
        .await
        .unwrap();
    let (before, version) = (rooms_events(&f).await, f.access.version());

    f.accounts
        .add_member(&secret, &name("ann"), &name("BOB"))
        .await
        .unwrap();
    logged_nothing(&f, &before, version, "adding a member again").await;
    f.accounts
        .remove_member(&secret, &name("ann"), &name("carol"))
        .await
        .unwrap();
    logged_nothing(&f, &before, version, "removing a non-member").await;
    f.accounts
        .remove_member(&secret, &name("ann"), &name("nobody"))
        .await
        .unwrap();
    logged_nothing(&f, &before, version, "removing a user who is nobody").await;
    assert_eq!(readers(&f, "secret", &USERS), ["ann", "bob"]);
}

pub async fn member_changes_are_refused_without_a_private_room_a_member_or_a_user(f: Fixture) {
    register(&f, &USERS).await;
    let secret = room("secret");
    f.accounts
        .create_private_room(&secret, &name("ann"))
        .await
        .unwrap();
    let (before, version) = (rooms_events(&f).await, f.access.version());

    for remove in [false, true] {
        let change = |room: &'static str, by: &'static str, user: &'static str| {
            let accounts = f.accounts.clone();
            async move {
                let (room, by, user) = (RoomName::parse(room).unwrap(), name(by), name(user));
                if remove {
                    accounts.remove_member(&room, &by, &user).await
                } else {
                    accounts.add_member(&room, &by, &user).await
                }
            }
        };
        let what = if remove { "remove" } else { "add" };
        let missing = change("nowhere", "ann", "bob").await;
        assert!(
            matches!(missing, Err(AccountError::NoSuchRoom)),
            "{what} in a room that does not exist: {missing:?}"
        );
        let public = change("general", "ann", "bob").await;
        assert!(
            matches!(public, Err(AccountError::RoomIsPublic)),
            "{what} in a public room: {public:?}"
        );
        let outsider = change("secret", "carol", "bob").await;
        assert!(
            matches!(outsider, Err(AccountError::NotAMember)),
            "{what} by a non-member: {outsider:?}"
        );
        let itself = change("secret", "carol", "carol").await;
        assert!(
            matches!(itself, Err(AccountError::NotAMember)),
            "{what} oneself, a non-member: {itself:?}"
        );
        logged_nothing(&f, &before, version, what).await;
    }
    let nobody = f
        .accounts
        .add_member(&secret, &name("ann"), &name("nobody"))
        .await;
    assert!(
        matches!(nobody, Err(AccountError::NoSuchUser)),
        "adding a user who is nobody: {nobody:?}"
    );
    logged_nothing(&f, &before, version, "adding nobody").await;
    assert_eq!(readers(&f, "secret", &USERS), ["ann"]);
    assert!(!f.access.is_private("general"));
}
