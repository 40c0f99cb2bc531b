//! Accounts: `POST /api/auth/register`, `/login`, `/logout` and `GET /api/auth/me`.
//!
//! Registering signs in. Names are taken in their normal form and are one account whatever
//! their case or width (see [`crate::domain::names`]); weak passwords are refused. A failed
//! sign-in says only `invalid_credentials`, the same for an unknown name and a wrong password
//! (and takes as long). Sign-in attempts are throttled per account name and per address, and
//! hashing waits its turn (503 with `Retry-After` past a short wait: see
//! [`crate::auth::password`]). Signing out forgets the session, ends the event streams opened
//! with it, clears the cookie and asks the browser to clear its HTTP cache (`Clear-Site-Data`), since
//! private answers may be in it; the page empties the ServiceWorker's private cache itself.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse, HttpResponseBuilder};
use serde::Deserialize;
use serde_json::json;

use super::{wrong_method, AppState};
use crate::auth::require_user;
use crate::auth::session::{clear_cookie, over_tls, SessionToken};
use crate::domain::{validate_password, UserName};
use crate::error::ApiError;
use crate::http_cache::NEVER_STORE;
use crate::store::accounts::NewSession;

/// Mounts `/auth/register`, `/auth/login`, `/auth/logout` and `/auth/me`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/auth/register")
            .route(web::post().to(register))
            .default_service(wrong_method()),
    )
    .service(
        web::resource("/auth/login")
            .route(web::post().to(login))
            .default_service(wrong_method()),
    )
    .service(
        web::resource("/auth/logout")
            .route(web::post().to(logout))
            .default_service(wrong_method()),
    )
    .service(
        web::resource("/auth/me")
            .route(web::get().to(me))
            .default_service(wrong_method()),
    );
}

/// The body of register and login.
#[derive(Deserialize)]
struct Credentials {
    name: String,
    password: String,
}

async fn register(
    req: HttpRequest,
    body: web::Json<Credentials>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let Credentials { name, password } = body.into_inner();
    let name = UserName::parse(&name)?;
    // zxcvbn takes milliseconds on a long password: not on the async threads.
    let (password, checked) = {
        let user = name.as_str().to_owned();
        tokio::task::spawn_blocking(move || {
            let checked = validate_password(&password, &user);
            (password, checked)
        })
        .await
        .map_err(|e| ApiError::Internal(format!("password check: {e}")))?
    };
    checked?;
    let hash = state.hasher.hash(password).await?;
    let (token, session) = new_session(&state);
    state.accounts.register(&name, hash, session).await?;
    Ok(signed_in(
        HttpResponse::Created(),
        &req,
        &state,
        &token,
        &name,
    ))
}

async fn login(
    req: HttpRequest,
    body: web::Json<Credentials>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let Credentials { name, password } = body.into_inner();
    // A name that could never register is just another unknown user.
    let name = UserName::parse(&name).ok();
    let key = name.as_ref().map(UserName::key);
    state
        .login_throttle
        .attempt(key.as_deref(), state.nudge.limits().client_ip(&req))?;
    let stored = match &name {
        Some(name) => state.accounts.credentials(name).await?,
        None => None,
    };
    let (name, hash) = match stored {
        Some(stored) => (Some(stored.name), Some(stored.password_hash)),
        None => (None, None),
    };
    let matches = state.hasher.verify(password, hash).await?;
    // The name as registered, whatever case or width it was typed in.
    let Some(name) = name.filter(|_| matches) else {
        return Err(ApiError::client(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "the name or the password is wrong",
        ));
    };
    let (token, session) = new_session(&state);
    state.accounts.start_session(&name, session).await?;
    Ok(signed_in(HttpResponse::Ok(), &req, &state, &token, &name))
}

async fn logout(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if let Some(token) = SessionToken::from_request(&req) {
        state.accounts.end_session(token.hash()).await?;
        // Its streams end too: they must not carry private rooms' nudges past the sign-out.
        // (On PostgreSQL every other node hears of it from the store.)
        state.nudge.end_session(&nudge::SessionKey(token.hash().0));
    }
    Ok(HttpResponse::NoContent()
        .insert_header((header::SET_COOKIE, clear_cookie(over_tls(&req))))
        .insert_header((header::CACHE_CONTROL, NEVER_STORE))
        .insert_header(("Clear-Site-Data", "\"cache\""))
        .finish())
}

async fn me(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let name = require_user(&req, &state).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, NEVER_STORE))
        .json(json!({ "name": name })))
}

fn new_session(state: &AppState) -> (SessionToken, NewSession) {
    let token = SessionToken::generate();
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let lifetime_ms = state.config.session_lifetime_secs.saturating_mul(1000);
    let expires_at_ms = now_ms.saturating_add(i64::try_from(lifetime_ms).unwrap_or(i64::MAX));
    let session = NewSession {
        token_hash: token.hash(),
        expires_at_ms,
    };
    (token, session)
}

fn signed_in(
    mut response: HttpResponseBuilder,
    req: &HttpRequest,
    state: &AppState,
    token: &SessionToken,
    name: &UserName,
) -> HttpResponse {
    let lifetime = Duration::from_secs(state.config.session_lifetime_secs);
    response
        .insert_header((
            header::SET_COOKIE,
            token.set_cookie(lifetime, over_tls(req)),
        ))
        .insert_header((header::CACHE_CONTROL, NEVER_STORE))
        .json(json!({ "name": name }))
}
