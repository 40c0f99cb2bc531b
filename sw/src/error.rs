//! The one place where JavaScript errors become Rust errors.
//!
//! Every `JsValue` that a promise rejects with or a binding throws is turned into an [`SwError`]
//! here, once, so the rest of the crate can use `?` and still report a readable name and message
//! (a `TypeError: Failed to fetch` stays recognisable in the console).

use std::fmt;

use wasm_bindgen::{JsCast, JsValue};

/// An error raised by a Web API (or by the SW itself), with the JavaScript name and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwError {
    /// The JavaScript error's `name` (`TypeError`, `NetworkError`, ...), or `SwError` for ours.
    pub name: String,
    /// The human-readable message.
    pub message: String,
}

/// The crate's result type.
pub type Result<T, E = SwError> = std::result::Result<T, E>;

impl SwError {
    /// An error that the SW raises itself, not one that came from JavaScript.
    pub fn new(message: impl Into<String>) -> Self {
        SwError {
            name: "SwError".to_owned(),
            message: message.into(),
        }
    }
}

impl fmt::Display for SwError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.name, self.message)
    }
}

impl std::error::Error for SwError {}

impl From<JsValue> for SwError {
    fn from(value: JsValue) -> Self {
        match value.dyn_ref::<js_sys::Error>() {
            Some(error) => SwError {
                name: error.name().into(),
                message: error.message().into(),
            },
            // Anything can be thrown in JavaScript; keep a printable form of it.
            None => SwError {
                name: "Error".to_owned(),
                message: value.as_string().unwrap_or_else(|| format!("{value:?}")),
            },
        }
    }
}

impl From<SwError> for JsValue {
    /// Back to a real `Error`, so that a rejected `respondWith` promise is a network error in
    /// the page and the console shows the name and message.
    fn from(error: SwError) -> Self {
        let js = js_sys::Error::new(&error.message);
        js.set_name(&error.name);
        js.into()
    }
}
