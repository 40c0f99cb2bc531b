//! Accounts over HTTP, shared by the server's test crates: registering, signing in, and
//! requests that carry the session cookie, for any handle on a running server (the API tests'
//! `TestApp`, the multinode tests' `Node`).
#![allow(dead_code)]

use reqwest::{Method, Response};
use serde_json::{json, Value};

/// The password [`AsUser::register`] gives `name`: strong enough to be accepted.
pub fn password_of(name: &str) -> String {
    format!("quiet lantern meadow of {name}")
}

/// The `nudge_session=…` pair of a response's `Set-Cookie`, ready to send back.
pub fn session_cookie(response: &Response) -> String {
    let set_cookie = response.headers()[reqwest::header::SET_COOKIE]
        .to_str()
        .expect("an ASCII Set-Cookie");
    let pair = set_cookie.split(';').next().expect("a name=value pair");
    assert!(pair.starts_with("nudge_session="), "{set_cookie}");
    pair.to_owned()
}

/// Requests as a signed-in user (or as nobody) to a running server: `cookie` is the
/// `nudge_session=…` pair to send, or `None`.
#[allow(async_fn_in_trait)]
pub trait AsUser {
    /// The client requests go through.
    fn client(&self) -> &reqwest::Client;

    /// The server's base URL, `http://host:port`.
    fn base(&self) -> &str;

    /// Any request, with the session cookie when given and a JSON body when given.
    async fn send_as(
        &self,
        method: Method,
        path: &str,
        cookie: Option<&str>,
        body: Option<Value>,
    ) -> Response {
        let mut request = self
            .client()
            .request(method, format!("{}{path}", self.base()));
        if let Some(cookie) = cookie {
            request = request.header(reqwest::header::COOKIE, cookie);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("the request is sent")
    }

    /// A `GET`, with the session cookie when given.
    async fn get_as(&self, path: &str, cookie: Option<&str>) -> Response {
        self.send_as(Method::GET, path, cookie, None).await
    }

    /// Registers `name` (password [`password_of`]), asserting a 201; returns its session
    /// cookie.
    async fn register(&self, name: &str) -> String {
        let body = json!({ "name": name, "password": password_of(name) });
        let response = self
            .send_as(Method::POST, "/api/auth/register", None, Some(body))
            .await;
        assert_eq!(response.status(), 201, "registering {name}");
        session_cookie(&response)
    }

    /// Signs `name` in (password [`password_of`]), asserting a 200; returns the new session's
    /// cookie.
    async fn sign_in(&self, name: &str) -> String {
        let body = json!({ "name": name, "password": password_of(name) });
        let response = self
            .send_as(Method::POST, "/api/auth/login", None, Some(body))
            .await;
        assert_eq!(response.status(), 200, "signing {name} in");
        session_cookie(&response)
    }

    /// Creates a private room as `cookie`'s user, asserting a 201.
    async fn create_private(&self, room: &str, cookie: &str) {
        let path = format!("/api/rooms/{room}");
        let body = Some(json!({ "private": true }));
        let response = self.send_as(Method::PUT, &path, Some(cookie), body).await;
        assert_eq!(response.status(), 201, "creating private room {room}");
    }

    /// `PUT` (add) or `DELETE` (remove) the member `name` of `room`, as `cookie`'s user.
    async fn member(
        &self,
        method: Method,
        room: &str,
        name: &str,
        cookie: Option<&str>,
    ) -> Response {
        let path = format!("/api/rooms/{room}/members/{name}");
        self.send_as(method, &path, cookie, None).await
    }
}
