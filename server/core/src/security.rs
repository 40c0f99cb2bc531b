//! What protects a browser user: security headers on every response (a Content-Security-Policy
//! without `unsafe-inline`; `'wasm-unsafe-eval'` is the narrow permission the ServiceWorker's
//! wasm needs), a check that writes come from the page's own origin (besides `SameSite`
//! cookies), and CORS only for origins on an allow-list.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method, StatusCode};
use actix_web::middleware::{DefaultHeaders, Next};
use actix_web::{web, ResponseError};

use crate::error::ApiError;
use crate::Nudge;

/// The page, its modules, the SW loader and the wasm all come from this origin; nothing runs
/// inline; the only code generation allowed is compiling WebAssembly.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; \
     script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; worker-src 'self'; manifest-src 'self'; object-src 'none'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Headers every response carries, whichever path serves it.
pub const SECURITY_HEADERS: [(&str, &str); 6] = [
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
    ("cross-origin-opener-policy", "same-origin"),
    (
        "permissions-policy",
        "camera=(), microphone=(), geolocation=()",
    ),
];

/// The middleware that adds [`SECURITY_HEADERS`] to every response actix-web serves.
pub fn default_headers() -> DefaultHeaders {
    SECURITY_HEADERS
        .iter()
        .fold(DefaultHeaders::new(), |headers, &pair| headers.add(pair))
}

/// Origins other than the page's own that may call the API (CORS); empty means none.
#[derive(Clone, Default)]
pub struct AllowedOrigins(pub Vec<String>);

fn is_write(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Refuses a write whose `Origin` is neither the server's own nor allowed, and a write that the
/// browser marks `Sec-Fetch-Site: cross-site`. Requests without either header (curl, servers)
/// pass: they carry no browser's cookies.
///
/// The refusal is a response, not an error, so that CORS headers and the request log see it.
pub async fn same_origin_writes(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    if is_write(req.method()) {
        let origin = req
            .headers()
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok());
        let refused = match origin {
            Some(origin) => {
                let allowed = req
                    .app_data::<web::Data<AllowedOrigins>>()
                    .is_some_and(|a| a.0.iter().any(|a| a == origin));
                !allowed && !is_own_origin(&req, origin)
            }
            None => req
                .headers()
                .get("sec-fetch-site")
                .is_some_and(|v| v == "cross-site"),
        };
        if refused {
            let error = ApiError::client(
                StatusCode::FORBIDDEN,
                "cross_origin_write",
                "writes are accepted from this site's own pages only",
            );
            return Ok(req
                .into_response(error.error_response())
                .map_into_right_body());
        }
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}

/// Whether `origin` is the site's own: one of `--public-origin` when configured; otherwise the
/// scheme of the connection and the `Host` it was asked for. `X-Forwarded-Host` and
/// `X-Forwarded-Proto` (and `Forwarded`) are what a client wants them to be unless a proxy
/// sets them, so they count only with `--trust-forwarded-for`.
fn is_own_origin(req: &ServiceRequest, origin: &str) -> bool {
    let Some(state) = req.app_data::<web::Data<Nudge>>() else {
        return false;
    };
    let config = state.settings();
    if !config.public_origin.is_empty() {
        return config
            .public_origin
            .iter()
            .any(|own| own.trim_end_matches('/') == origin);
    }
    if config.trust_forwarded_for {
        let info = req.connection_info();
        return origin == format!("{}://{}", info.scheme(), info.host());
    }
    let scheme = if req.app_config().secure() {
        "https"
    } else {
        "http"
    };
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()));
    host.is_some_and(|host| origin == format!("{scheme}://{host}"))
}

/// CORS for the allow-listed origins only; with an empty list no CORS headers are ever sent.
pub fn cors(allowed: &AllowedOrigins) -> actix_cors::Cors {
    let mut cors = actix_cors::Cors::default()
        .allowed_methods(["GET", "POST", "PUT", "DELETE"])
        .allowed_headers([
            header::CONTENT_TYPE,
            header::IF_NONE_MATCH,
            header::HeaderName::from_static("idempotency-key"),
            header::HeaderName::from_static("last-event-id"),
        ])
        .expose_headers([header::ETAG, header::RETRY_AFTER])
        .max_age(600)
        // Same-origin requests carry an `Origin` too: they must pass, only without CORS headers.
        .block_on_origin_mismatch(false);
    for origin in &allowed.0 {
        cors = cors.allowed_origin(origin);
    }
    cors
}
