//! Web Push from DevTools: headless Chromium has no push service, so a test hands a push to the
//! ServiceWorker itself (`ServiceWorker.deliverPushMessage`), and reads the notifications the SW
//! showed back through the Notification API.

use std::time::Duration;

use anyhow::{anyhow, Context};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::browser::Browser;
use crate::wait::wait_until;

/// A notification as `registration.getNotifications()` gives it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Shown {
    /// Its title.
    pub title: String,
    /// Its body.
    pub body: String,
    /// Its tag.
    pub tag: String,
    /// `data.url`: the page a click opens.
    pub url: Option<String>,
}

/// The DevTools event [`Browser::registration_id`] reads: launch the browser with
/// `Browser::launch_with(name, viewport, PUSH_EVENTS)`.
pub const PUSH_EVENTS: &[&str] = &["ServiceWorker.workerRegistrationUpdated"];

impl Browser {
    /// Lets `origin` show notifications without a prompt, as a person who clicked "Allow".
    pub async fn grant_notifications(&self, origin: &str) -> anyhow::Result<()> {
        self.cdp(
            "Browser.grantPermissions",
            json!({ "origin": origin, "permissions": ["notifications"] }),
        )
        .await?;
        Ok(())
    }

    /// The id DevTools gives the ServiceWorker registration whose scope is `scope` (such as
    /// `http://127.0.0.1:PORT/`): learnt from the `workerRegistrationUpdated` event that
    /// `ServiceWorker.enable` sends, which chromedriver keeps in its `devtools` log when the
    /// browser was launched with [`PUSH_EVENTS`].
    pub async fn registration_id(&self, scope: &str, timeout: Duration) -> anyhow::Result<String> {
        self.cdp("ServiceWorker.enable", json!({})).await?;
        let found = wait_until(
            "the ServiceWorker registration in the DevTools log",
            timeout,
            Duration::from_millis(100),
            || async {
                for entry in self.driver().get_log("devtools").await? {
                    let event: Value = serde_json::from_str(&entry.message)?;
                    let Some(registrations) = event["params"]["registrations"].as_array() else {
                        continue;
                    };
                    for registration in registrations {
                        if registration["scopeURL"] == scope && registration["isDeleted"] != true {
                            if let Some(id) = registration["registrationId"].as_str() {
                                return Ok(Some(id.to_owned()));
                            }
                        }
                    }
                }
                Ok(None)
            },
        )
        .await;
        found.with_context(|| format!("{}: no registration for {scope}", self.name()))
    }

    /// Delivers `payload` as the data of a push to the registration `id` of `origin`.
    pub async fn deliver_push(
        &self,
        origin: &str,
        id: &str,
        payload: &Value,
    ) -> anyhow::Result<()> {
        self.cdp(
            "ServiceWorker.deliverPushMessage",
            json!({ "origin": origin, "registrationId": id, "data": payload.to_string() }),
        )
        .await?;
        Ok(())
    }

    /// The notifications the current page's ServiceWorker registration shows now.
    pub async fn notifications(&self) -> anyhow::Result<Vec<Shown>> {
        let shown: Value = self
            .eval(
                r#"
                const reg = await navigator.serviceWorker.getRegistration("/");
                if (!reg) return null;
                return (await reg.getNotifications()).map((n) => ({
                    title: n.title, body: n.body, tag: n.tag,
                    url: n.data && typeof n.data.url === "string" ? n.data.url : null,
                }));
                "#,
            )
            .await?;
        if shown.is_null() {
            return Err(anyhow!("{}: no ServiceWorker registration", self.name()));
        }
        Ok(serde_json::from_value(shown)?)
    }
}
