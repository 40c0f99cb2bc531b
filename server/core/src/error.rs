//! The one mapping from errors to HTTP responses: a status and a JSON body
//! `{"error": {"code": "…", "message": "…"}}`. Client mistakes are answered, not logged as
//! errors; a 500 says nothing about the inside. A 4xx that actix-web or actix-files answered
//! in their own words is given this body too ([`json_client_error`]).

use actix_web::body::BoxBody;
use actix_web::dev::ServiceResponse;
use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use serde_json::json;

use crate::store::StoreError;

/// The error code of a JSON error response, kept in the response's extensions so that the
/// request log and `/metrics` can say why a request was refused without reading the body.
#[derive(Debug, Clone)]
pub struct ErrorCode(pub String);

/// The app's limit on request bodies, as app data, so that a 413 can say what it is.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request itself is at fault (4xx).
    #[error("{message}")]
    Client {
        /// The HTTP status to answer with.
        status: StatusCode,
        /// A stable, machine-readable code.
        code: String,
        /// A sentence for the person reading it.
        message: String,
    },
    /// A limit was reached; come back after `retry_after_secs`.
    #[error("{message}")]
    TooManyRequests {
        /// A stable, machine-readable code.
        code: String,
        /// A sentence for the person reading it.
        message: String,
        /// Seconds until a retry may succeed.
        retry_after_secs: u64,
    },
    /// The server is at a bound it keeps on purpose (503); come back after `retry_after_secs`.
    #[error("{message}")]
    Busy {
        /// A stable, machine-readable code.
        code: String,
        /// A sentence for the person reading it.
        message: String,
        /// Seconds until a retry may succeed.
        retry_after_secs: u64,
    },
    /// The store failed or is unavailable.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Something else inside failed (a background task); answered as a bare 500.
    #[error("internal: {0}")]
    Internal(String),
}

impl From<rusqlite::Error> for ApiError {
    fn from(error: rusqlite::Error) -> Self {
        Self::Store(error.into())
    }
}

impl ApiError {
    /// A 400 for input that breaks a rule of the contract.
    pub fn invalid(code: &str, message: &str) -> Self {
        Self::client(StatusCode::BAD_REQUEST, code, message)
    }

    /// A 404 for something that does not exist.
    pub fn not_found(code: &str, message: &str) -> Self {
        Self::client(StatusCode::NOT_FOUND, code, message)
    }

    /// Any 4xx.
    pub fn client(status: StatusCode, code: &str, message: &str) -> Self {
        Self::Client {
            status,
            code: code.to_owned(),
            message: message.to_owned(),
        }
    }

    fn code_and_message(&self) -> (&str, String) {
        match self {
            Self::Client { code, message, .. }
            | Self::TooManyRequests { code, message, .. }
            | Self::Busy { code, message, .. } => (code, message.clone()),
            Self::Store(StoreError::IdempotencyConflict) => (
                "idempotency_key_reused",
                "this Idempotency-Key was already used with a different request".to_owned(),
            ),
            Self::Store(StoreError::Unavailable(_)) => (
                "store_unavailable",
                "the store is unavailable; retry shortly".to_owned(),
            ),
            Self::Store(_) | Self::Internal(_) => ("internal", "internal server error".to_owned()),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Client { status, .. } => *status,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Store(StoreError::IdempotencyConflict) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Store(StoreError::Unavailable(_)) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Store(_) | Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        // 501 is a deployment's choice of backend, and Busy a bound doing its job: not failures.
        if status.is_server_error()
            && status != StatusCode::NOT_IMPLEMENTED
            && !matches!(self, Self::Busy { .. })
        {
            tracing::error!(error = %self, "request failed");
        }
        let (code, message) = self.code_and_message();
        let mut response = HttpResponse::build(status);
        response.insert_header((header::CACHE_CONTROL, "no-store"));
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.insert_header((header::RETRY_AFTER, "1"));
        }
        if let Self::TooManyRequests {
            retry_after_secs, ..
        }
        | Self::Busy {
            retry_after_secs, ..
        } = self
        {
            response.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
        }
        let mut response = response.json(json!({ "error": { "code": code, "message": message } }));
        response.extensions_mut().insert(ErrorCode(code.to_owned()));
        response
    }
}

/// Maps the JSON extractor's failures onto 413, 415 and 400.
pub fn json_error(err: JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    let api = match &err {
        JsonPayloadError::Overflow { limit }
        | JsonPayloadError::OverflowKnownLength { limit, .. } => ApiError::client(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            &format!("request bodies are limited to {limit} bytes"),
        ),
        JsonPayloadError::ContentType => ApiError::client(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as application/json",
        ),
        JsonPayloadError::Deserialize(e) => {
            ApiError::invalid("invalid_json", &format!("the body is not valid: {e}"))
        }
        other => ApiError::invalid(
            "invalid_body",
            &format!("the body could not be read: {other}"),
        ),
    };
    api.into()
}

/// Maps query-string failures (`?after=abc`) onto a 400.
pub fn query_error(err: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::invalid(
        "invalid_query",
        &format!("the query string is not valid: {err}"),
    )
    .into()
}

/// Maps path-segment failures onto a 400.
pub fn path_error(err: PathError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::invalid("invalid_path", &format!("the path is not valid: {err}")).into()
}

/// The answer for a path that no route knows.
pub async fn not_found() -> HttpResponse {
    ApiError::not_found("not_found", "no such resource").error_response()
}

/// The answer for a known path asked with a method it does not support.
pub async fn method_not_allowed() -> HttpResponse {
    ApiError::client(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this resource does not support that method",
    )
    .error_response()
}

/// Gives a 4xx that is not already the JSON error (actix-web's own, such as a body over the
/// payload limit, and actix-files', such as a 400 for a hidden path or a 405 for a POST) the
/// JSON error body, keeping its status and headers (`Allow`, `Retry-After`, …).
pub fn json_client_error(response: ServiceResponse<BoxBody>) -> ServiceResponse<BoxBody> {
    if !needs_json(response.response()) {
        return response;
    }
    let (request, old) = response.into_parts();
    let error = old.error().map(ToString::to_string);
    let error = error.as_ref().map(|e| e as &dyn std::fmt::Display);
    let json = json_error_response(old, error, Some(&request));
    ServiceResponse::new(request, json)
}

/// Whether `response` is a 4xx without the JSON error body.
fn needs_json(response: &HttpResponse) -> bool {
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    response.status().is_client_error() && !is_json
}

/// `old` with the JSON error body in place of its own, when it is a 4xx without one (and the
/// security headers, for an error that becomes a response outside their middleware).
pub fn json_error_response(
    old: HttpResponse,
    error: Option<&dyn std::fmt::Display>,
    request: Option<&HttpRequest>,
) -> HttpResponse {
    if !needs_json(&old) {
        return old;
    }
    let status = old.status();
    let (code, message) = describe_client_error(status, request, error);
    let mut json = ApiError::client(status, code, &message).error_response();
    for (name, value) in old.headers() {
        if name != header::CONTENT_TYPE
            && name != header::CONTENT_LENGTH
            && !json.headers().contains_key(name)
        {
            json.headers_mut().append(name.clone(), value.clone());
        }
    }
    for (name, value) in crate::security::SECURITY_HEADERS {
        if !json.headers().contains_key(name) {
            json.headers_mut().insert(
                header::HeaderName::from_static(name),
                header::HeaderValue::from_static(value),
            );
        }
    }
    json
}

/// A code and message for a 4xx that actix-web or actix-files answered.
fn describe_client_error(
    status: StatusCode,
    request: Option<&HttpRequest>,
    error: Option<&dyn std::fmt::Display>,
) -> (&'static str, String) {
    let reason = status.canonical_reason().unwrap_or("client error");
    let detail = error.map_or_else(|| reason.to_lowercase(), |e| e.to_string());
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => {
            let limit = request
                .and_then(|r| r.app_data::<web::Data<BodyLimit>>())
                .map(|limit| limit.0);
            let message = match limit {
                Some(limit) => format!("request bodies are limited to {limit} bytes"),
                None => format!("the request body is too large: {detail}"),
            };
            ("body_too_large", message)
        }
        StatusCode::BAD_REQUEST => ("bad_request", format!("the request is not valid: {detail}")),
        StatusCode::NOT_FOUND => ("not_found", "no such resource".to_owned()),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "this resource does not support that method".to_owned(),
        ),
        StatusCode::NOT_ACCEPTABLE => ("not_acceptable", detail),
        StatusCode::LENGTH_REQUIRED => ("length_required", detail),
        StatusCode::PRECONDITION_FAILED => ("precondition_failed", detail),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("unsupported_media_type", detail),
        StatusCode::RANGE_NOT_SATISFIABLE => ("range_not_satisfiable", detail),
        StatusCode::FORBIDDEN => ("forbidden", detail),
        _ => ("client_error", detail),
    }
}
