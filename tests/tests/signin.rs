//! Sign-in on the page: registering, a private room, and what signing out leaves on the device.
//! Private answers live in the SW's own cache (`nudge-private-v1`), which sign-out empties;
//! public ones stay, so the public room still opens offline afterwards. Signing out with unsent
//! messages asks first, and those messages stay in the outbox.

use std::time::Duration;

use anyhow::{ensure, Context};
use nudge_e2e::browser::Viewport;
use nudge_e2e::page::{
    account, cached_recent, cached_urls, click, outbox_texts, post_via_form, sign_in_via_form,
    wait_for_page, Account, POLL,
};
use nudge_e2e::{finish, spawn_app, wait_until, Browser, TestApp};

/// Page loads, SW installs, argon2 in a debug build, a server restart and the stream's retry.
const SETTLE: Duration = Duration::from_secs(20);
const PRIVATE_CACHE: &str = "nudge-private-v1";
const PASSWORD: &str = "correct horse battery";
const ROOM: &str = "secret-plans";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_come_and_go_and_strangers_are_told_to_sign_in() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let (ann, bob) = tokio::try_join!(
        Browser::launch("signin-ann", Viewport::DESKTOP),
        Browser::launch("signin-bob", Viewport::DESKTOP)
    )?;
    let outcome = membership(&app, &ann, &bob).await;
    let bob_done = finish(&app, [bob], Ok(())).await;
    finish(&app, [ann], outcome).await?;
    bob_done
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_out_forgets_private_rooms_but_not_public_ones() -> anyhow::Result<()> {
    let mut app = spawn_app().await?;
    app.post_message("general", "Seeder", "public hello")
        .await?;
    let browser = Browser::launch("signin", Viewport::DESKTOP).await?;
    let outcome = sign_out_clears_private(&mut app, &browser).await;
    finish(&app, [browser], outcome).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_out_with_unsent_messages_asks_first() -> anyhow::Result<()> {
    let mut app = spawn_app().await?;
    let browser = Browser::launch("signin-outbox", Viewport::DESKTOP).await?;
    let outcome = sign_out_with_pending(&mut app, &browser).await;
    finish(&app, [browser], outcome).await
}

/// Opens `/#general`, live and controlled by the SW: the first visit's reads went out before
/// the SW took over, so the page is read once more under it.
async fn open_general(app: &TestApp, browser: &Browser) -> anyhow::Result<()> {
    nudge_e2e::page::open_controlled(browser, &app.url("/#general"), SETTLE).await
}

async fn wait_for_account(browser: &Browser, want: Account) -> anyhow::Result<()> {
    wait_until(
        &format!("the account area to show {want:?}"),
        SETTLE,
        POLL,
        || async {
            let now = account(browser).await?;
            Ok((now == want).then_some(()))
        },
    )
    .await
}

fn signed_in(name: &str) -> Account {
    Account {
        state: "signed-in".into(),
        name: name.into(),
    }
}

fn signed_out() -> Account {
    Account {
        state: "signed-out".into(),
        name: String::new(),
    }
}

async fn current_room(browser: &Browser) -> anyhow::Result<String> {
    browser
        .eval("return document.getElementById('room-name').textContent;")
        .await
}

async fn sign_out_clears_private(app: &mut TestApp, browser: &Browser) -> anyhow::Result<()> {
    open_general(app, browser).await?;
    sign_in_via_form(browser, "Ann", PASSWORD, true).await?;
    wait_for_account(browser, signed_in("Ann")).await?;
    let author: String = browser
        .eval("return document.getElementById('author').value;")
        .await?;
    assert_eq!(author, "Ann", "the display name is the account name");
    // Signed in, the page writes under no other name: it says so and sends nothing.
    post_via_form(browser, "Bea", "not as Ann").await?;
    let error = wait_until("the compose error", SETTLE, POLL, || async {
        let text: String = browser
            .eval("return document.getElementById('compose-error').textContent;")
            .await?;
        Ok((!text.is_empty()).then_some(text))
    })
    .await?;
    ensure!(error.contains("Signed in as Ann"), "{error:?}");
    let (author, pending): (String, usize) = (
        browser
            .eval("return document.getElementById('author').value;")
            .await?,
        outbox_texts(browser).await?.len(),
    );
    assert_eq!(author, "Ann", "the account name is back in the field");
    assert_eq!(pending, 0, "nothing went to the outbox");

    // A private room, created with the checkbox beside "Create".
    let driver = browser.driver();
    driver
        .find(thirtyfour::By::Id("new-room-name"))
        .await?
        .send_keys(ROOM)
        .await?;
    click(browser, "new-room-private").await?;
    driver
        .find(thirtyfour::By::Css("#new-room [type=submit]"))
        .await?
        .click()
        .await?;
    wait_until("the private room, marked in the list", SETTLE, POLL, || async {
        let marked: bool = browser
            .eval(&format!(
                "return !!document.querySelector('#rooms li[data-room=\"{ROOM}\"][data-private=\"true\"] .private-mark')
                    && document.getElementById('room-name').textContent === '#{ROOM}';"
            ))
            .await?;
        Ok(marked.then_some(()))
    })
    .await?;
    browser.screenshot("signin-private-room.png").await?;
    let members_shown: bool = browser
        .eval("return !document.getElementById('members').hidden;")
        .await?;
    ensure!(members_shown, "a private room shows its members part");

    post_via_form(browser, "Ann", "for members only").await?;
    wait_for_page(browser, "the private post, sent", SETTLE, |s| {
        s.pending.is_empty() && s.messages.iter().any(|(_, t)| t == "for members only")
    })
    .await?;
    let private_recent = app.url(&format!("/api/rooms/{ROOM}/recent"));
    wait_until(
        "the private room's recent in the SW's private cache",
        SETTLE,
        POLL,
        || async {
            let urls = cached_urls(browser).await?;
            Ok(urls
                .iter()
                .any(|(cache, url)| cache == PRIVATE_CACHE && *url == private_recent)
                .then_some(()))
        },
    )
    .await?;

    // The public room, read under the SW, then back to the private one to sign out from there.
    browser
        .eval::<bool>("location.hash = 'general'; return true;")
        .await?;
    wait_for_page(browser, "#general", SETTLE, |s| {
        s.messages.iter().any(|(_, t)| t == "public hello")
    })
    .await?;
    wait_until("the SW to store #general", SETTLE, POLL, || {
        cached_recent(browser, "general")
    })
    .await?;
    browser
        .eval::<bool>(&format!("location.hash = '{ROOM}'; return true;"))
        .await?;
    wait_for_page(browser, "back in the private room", SETTLE, |s| {
        s.messages.iter().any(|(_, t)| t == "for members only")
    })
    .await?;

    click(browser, "signout").await?;
    wait_for_account(browser, signed_out()).await?;
    wait_until(
        "the page to leave the private room",
        SETTLE,
        POLL,
        || async { Ok((current_room(browser).await? == "#general").then_some(())) },
    )
    .await?;
    let dialog_open: bool = browser
        .eval("return document.getElementById('signout-dialog').open;")
        .await?;
    ensure!(!dialog_open, "nothing was unsent, yet the page asked");

    let urls = cached_urls(browser).await?;
    let private: Vec<_> = urls
        .iter()
        .filter(|(_, url)| url.contains(&format!("/api/rooms/{ROOM}")))
        .collect();
    ensure!(
        private.is_empty(),
        "private answers still in Cache Storage after sign-out: {private:?}"
    );
    ensure!(
        cached_recent(browser, "general").await?.is_some(),
        "the public room's copy went with sign-out: {urls:?}"
    );
    let hidden: bool = browser
        .eval(&format!(
            "return !document.querySelector('#rooms li[data-room=\"{ROOM}\"]');"
        ))
        .await?;
    ensure!(
        hidden,
        "the private room is still in the list after sign-out"
    );

    // Offline, with a SW that must start again: the public room still opens.
    app.stop()?;
    browser.stop_service_workers().await?;
    let href: String = browser.eval("return location.href;").await?;
    ensure!(
        href.ends_with("/#general"),
        "not at /#general before the reload: {href}"
    );
    browser.reload().await?;
    let shot = wait_for_page(
        browser,
        "#general offline, from the SW's copy",
        SETTLE,
        |s| {
            s.state.as_deref() == Some("offline")
                && s.messages.iter().any(|(_, t)| t == "public hello")
        },
    )
    .await?;
    assert_eq!(shot.source.as_deref(), Some("offline"));
    assert_eq!(current_room(browser).await?, "#general");

    // The new parts keep to the server's CSP (no inline scripts or style attributes).
    let refused: Vec<String> = browser
        .console()
        .await?
        .into_iter()
        .map(|e| e.message)
        .filter(|m| m.contains("Content Security Policy"))
        .collect();
    ensure!(refused.is_empty(), "CSP violations: {refused:?}");
    Ok(())
}

async fn sign_out_with_pending(app: &mut TestApp, browser: &Browser) -> anyhow::Result<()> {
    open_general(app, browser).await?;
    sign_in_via_form(browser, "Bo", PASSWORD, true).await?;
    wait_for_account(browser, signed_in("Bo")).await?;

    app.stop()?;
    wait_for_page(
        browser,
        "the page to notice the server is gone",
        SETTLE,
        |s| matches!(s.state.as_deref(), Some("reconnecting" | "offline")),
    )
    .await?;
    post_via_form(browser, "Bo", "written offline").await?;
    wait_for_page(browser, "the message, pending", SETTLE, |s| {
        s.pending == ["written offline"]
    })
    .await?;

    // Cancel: still signed in, the message still pending.
    click(browser, "signout").await?;
    let warning = wait_for_dialog(browser).await?;
    ensure!(
        warning.contains("1 message"),
        "the dialog does not mention the unsent message: {warning:?}"
    );
    click(browser, "signout-cancel").await?;
    wait_until("the dialog to close", SETTLE, POLL, || async {
        let open: bool = browser
            .eval("return document.getElementById('signout-dialog').open;")
            .await?;
        Ok((!open).then_some(()))
    })
    .await?;
    assert_eq!(
        account(browser).await?,
        signed_in("Bo"),
        "cancel keeps you signed in"
    );
    assert_eq!(
        outbox_texts(browser).await?,
        ["written offline"],
        "cancel keeps the outbox"
    );

    // Accept, with the server back (sign-out needs it): the session ends, the message stays.
    click(browser, "signout").await?;
    wait_for_dialog(browser).await?;
    app.restart().await?;
    click(browser, "signout-confirm").await?;
    wait_for_account(browser, signed_out()).await?;
    wait_for_page(
        browser,
        "the other account's message off the screen",
        SETTLE,
        |s| s.pending.is_empty(),
    )
    .await?;
    assert_eq!(
        outbox_texts(browser).await?,
        ["written offline"],
        "the unsent message stays in the outbox after sign-out"
    );
    let stored = app.recent("general").await.context("reading #general")?;
    ensure!(
        stored.messages.iter().all(|m| m.text != "written offline"),
        "Bo's message went up after Bo signed out: {:?}",
        stored.messages
    );
    Ok(())
}

/// Waits for the sign-out dialog and returns its warning text.
async fn wait_for_dialog(browser: &Browser) -> anyhow::Result<String> {
    wait_until("the sign-out dialog", SETTLE, POLL, || async {
        let text: Option<String> = browser
            .eval(
                "const d = document.getElementById('signout-dialog');
                 return d.open ? document.getElementById('signout-pending').textContent : null;",
            )
            .await?;
        Ok(text)
    })
    .await
}

async fn denied_text(browser: &Browser) -> anyhow::Result<Option<String>> {
    browser
        .eval(
            "const el = document.getElementById('room-denied');
             return el.hidden ? null : el.textContent;",
        )
        .await
}

async fn membership(app: &TestApp, ann: &Browser, bob: &Browser) -> anyhow::Result<()> {
    tokio::try_join!(open_general(app, ann), open_general(app, bob))?;
    sign_in_via_form(ann, "ann", PASSWORD, true).await?;
    wait_for_account(ann, signed_in("ann")).await?;

    // Signed out, a private room's read answers 401: the page says to sign in.
    let room = "inner-circle";
    ann.driver()
        .find(thirtyfour::By::Id("new-room-name"))
        .await?
        .send_keys(room)
        .await?;
    click(ann, "new-room-private").await?;
    click(ann, "new-room-submit").await?;
    wait_until("ann in her private room", SETTLE, POLL, || async {
        Ok((current_room(ann).await? == format!("#{room}")).then_some(()))
    })
    .await?;
    bob.eval::<bool>(&format!("location.hash = '{room}'; return true;"))
        .await?;
    let told = wait_until("bob to be told to sign in", SETTLE, POLL, || {
        denied_text(bob)
    })
    .await?;
    ensure!(told.contains("Sign in"), "{told:?}");

    // A failed sign-in shows the server's own words.
    sign_in_via_form(bob, "bob", "not the password", false).await?;
    let error = wait_until("the sign-in error", SETTLE, POLL, || async {
        let text: String = bob
            .eval("return document.getElementById('account-error').textContent;")
            .await?;
        Ok((!text.is_empty()).then_some(text))
    })
    .await?;
    ensure!(error.contains("password is wrong"), "{error:?}");
    assert_eq!(account(bob).await?, signed_out());

    // Bob registers; ann adds him with the member field; his page can read the room now.
    sign_in_via_form(bob, "bob", PASSWORD, true).await?;
    wait_for_account(bob, signed_in("bob")).await?;
    let told = wait_until("bob, not a member yet", SETTLE, POLL, || async {
        Ok(denied_text(bob).await?.filter(|t| t.contains("private")))
    })
    .await?;
    ensure!(!told.is_empty());
    ann.driver()
        .find(thirtyfour::By::Id("member-name"))
        .await?
        .send_keys("bob")
        .await?;
    click(ann, "add-member-submit").await?;
    wait_until("bob in ann's member list", SETTLE, POLL, || async {
        let listed: bool = ann
            .eval("return !!document.querySelector('#member-list li[data-member=\"bob\"]');")
            .await?;
        Ok(listed.then_some(()))
    })
    .await?;
    post_via_form(ann, "ann", "welcome, bob").await?;
    // No reload on bob's side: the membership nudges his room list, and the page reads a room
    // it was refused again once the room shows up in the list.
    wait_for_page(bob, "bob reading the private room", SETTLE, |s| {
        s.messages.iter().any(|(_, t)| t == "welcome, bob")
    })
    .await?;
    wait_for_page(bob, "bob's stream, live", SETTLE, |s| {
        s.state.as_deref() == Some("live")
    })
    .await?;

    // Ann removes him: his stream says `forbidden`, and his page leaves the room with a word.
    ann.eval::<bool>(
        "document.querySelector('#member-list li[data-member=\"bob\"] .member-remove').click(); return true;",
    )
    .await?;
    wait_until("bob's page to leave the room", SETTLE, POLL, || async {
        Ok((current_room(bob).await? == "#general").then_some(()))
    })
    .await?;
    let notice: String = bob
        .eval("return document.getElementById('notice').textContent;")
        .await?;
    ensure!(
        notice.contains("no longer have access"),
        "bob was not told why: {notice:?}"
    );
    Ok(())
}
