//! A stream opened with a session lives no longer than the session: signing out or the
//! session's expiry ends it, so it never carries a private room's nudges past either.

use std::time::Duration;

use reqwest::Method;

use crate::helpers::{spawn_app_with, AsUser, StreamPath};
use crate::sse_client::SseClient;

/// Reads `stream` until the server ends it, failing on any `changed` event for `topic` and
/// when it has not ended within `within` (heartbeats keep it talking meanwhile).
async fn ends_without(stream: &mut SseClient, topic: &str, within: Duration) {
    let read = async {
        while let Some(event) = stream.next_event().await {
            assert!(
                !(event.event == "changed" && event.json()["topic"] == topic),
                "a nudge for {topic} after the session ended: {}",
                event.data
            );
        }
    };
    tokio::time::timeout(within, read)
        .await
        .expect("the stream ended within the wait");
}

#[tokio::test]
async fn signing_out_ends_that_sessions_streams_on_both_paths() {
    for path in [StreamPath::Dedicated, StreamPath::Shared] {
        let app = spawn_app_with(|c| c.heartbeat_secs = 1)
            .await
            .streams_over(path);
        let ann = app.register("ann").await;
        app.create_private("secret", &ann).await;
        // A second session, beside the one registering opened.
        let other_session = app.sign_in("ann").await;
        let mut signed_out = app.subscribe_as("topic=rooms/secret", &ann).await;
        let mut still_in = app.subscribe_as("topic=rooms/*", &other_session).await;

        let out = app
            .send_as(Method::POST, "/api/auth/logout", Some(&ann), None)
            .await;
        assert_eq!(out.status(), 204);
        let posted = app
            .post_as("secret", Some(&other_session), "after the sign-out")
            .await;
        assert_eq!(posted.status(), 201);

        ends_without(&mut signed_out, "rooms/secret", Duration::from_secs(10)).await;
        let seen = still_in
            .events_until(|e| e.event == "changed" && e.json()["topic"] == "rooms/secret")
            .await;
        assert!(!seen.is_empty(), "ann's other session still reads {path:?}");
    }
}

#[tokio::test]
async fn a_stream_ends_when_its_session_expires() {
    let app = spawn_app_with(|c| {
        c.heartbeat_secs = 1;
        c.session_lifetime_secs = 2;
    })
    .await;
    let ann = app.register("ann").await;
    app.create_private("secret", &ann).await;
    let mut stream = app.subscribe_as("topic=rooms/*", &ann).await;
    // Well past the two seconds, with a deadline on the whole wait.
    ends_without(&mut stream, "rooms/secret", Duration::from_secs(15)).await;
    let again = app.open_stream_as("topic=rooms/secret", Some(&ann)).await;
    assert_eq!(
        again.status(),
        401,
        "the expired session reads nothing private"
    );
}
