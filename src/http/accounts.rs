//! Accounts over HTTP: register, log in and out, who am I, find people.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use super::extract::{
    Auth, ClientAddr, DEVICE_COOKIE, JsonBody, PathParams, QueryParams, SESSION_COOKIE, cookie,
};
use crate::app::{App, SignedIn};
use crate::domain::{Timestamp, User};
use crate::error::Result;

pub fn routes() -> Router<App> {
    Router::new()
        .route("/auth/register", post(register))
        .route("/auth/login", post(login))
        .route("/auth/logout", post(logout))
        .route("/me", get(me).patch(update_profile))
        .route("/users", get(search_users))
        .route("/users/{user_id}", get(user))
}

#[derive(Deserialize)]
struct RegisterRequest {
    username: String,
    password: String,
    display_name: Option<String>,
}

#[derive(Deserialize)]
struct LoginRequest {
    username: String,
    password: String,
}

#[derive(Serialize)]
struct SessionResponse<'a> {
    user: &'a User,
    token: &'a str,
    expires_at: Timestamp,
}

async fn register(
    State(app): State<App>,
    ClientAddr(address): ClientAddr,
    JsonBody(request): JsonBody<RegisterRequest>,
) -> Result<Response> {
    let display_name = request.display_name.as_deref();
    let signed_in =
        app.register(&request.username, request.password, display_name, address).await?;
    Ok(session_response(&app, StatusCode::CREATED, &signed_in))
}

async fn login(
    State(app): State<App>,
    ClientAddr(address): ClientAddr,
    headers: HeaderMap,
    JsonBody(request): JsonBody<LoginRequest>,
) -> Result<Response> {
    let device = cookie(&headers, DEVICE_COOKIE);
    let signed_in =
        app.login(&request.username, &request.password, address, device.as_deref()).await?;
    Ok(session_response(&app, StatusCode::OK, &signed_in))
}

async fn logout(State(app): State<App>, auth: Auth) -> Result<Response> {
    app.logout(&auth.token).await?;
    let mut headers = HeaderMap::new();
    headers.insert(header::SET_COOKIE, session_cookie(&app, "", 0));
    Ok((StatusCode::NO_CONTENT, headers).into_response())
}

/// The caller, and whether they administer the server (the client shows administration).
#[derive(Serialize)]
struct Me {
    #[serde(flatten)]
    user: User,
    admin: bool,
}

async fn me(auth: Auth) -> Json<Me> {
    Json(Me { user: auth.session.user, admin: auth.session.admin })
}

#[derive(Deserialize)]
struct ProfileRequest {
    display_name: Option<String>,
    bio: Option<String>,
}

async fn update_profile(
    State(app): State<App>,
    auth: Auth,
    JsonBody(request): JsonBody<ProfileRequest>,
) -> Result<Json<User>> {
    let user = app
        .update_profile(
            auth.session.user.id,
            request.display_name.as_deref(),
            request.bio.as_deref(),
        )
        .await?;
    Ok(Json(user))
}

#[derive(Deserialize)]
struct UserSearch {
    #[serde(default)]
    q: String,
    limit: Option<u32>,
}

#[derive(Serialize)]
struct Users {
    users: Vec<User>,
}

async fn search_users(
    State(app): State<App>,
    _auth: Auth,
    QueryParams(query): QueryParams<UserSearch>,
) -> Result<Json<Users>> {
    let users = app.search_users(&query.q, query.limit).await?;
    Ok(Json(Users { users }))
}

async fn user(
    State(app): State<App>,
    _auth: Auth,
    PathParams(user_id): PathParams<String>,
) -> Result<Json<User>> {
    Ok(Json(app.user(&user_id).await?))
}

/// `{user, token, expires_at}` with the session cookie set, for browsers.
pub(super) fn session_response(app: &App, status: StatusCode, signed_in: &SignedIn) -> Response {
    let max_age = (signed_in.expires_at.as_millis() - Timestamp::now().as_millis()) / 1000;
    let body = SessionResponse {
        user: &signed_in.user,
        token: signed_in.token.as_str(),
        expires_at: signed_in.expires_at,
    };
    let mut headers = HeaderMap::new();
    headers
        .insert(header::SET_COOKIE, session_cookie(app, signed_in.token.as_str(), max_age.max(0)));
    headers.append(header::SET_COOKIE, device_cookie(app, &signed_in.device_cookie));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    (status, headers, Json(body)).into_response()
}

/// How long a device stays known after it last signed in: a year.
const DEVICE_COOKIE_MAX_AGE: u64 = 365 * 86_400;

/// The device cookie: sent only to the sign-in endpoints (nothing else reads it), never to
/// scripts, never with another site's requests. It outlives sessions and logouts.
pub(super) fn device_cookie(app: &App, value: &str) -> HeaderValue {
    let secure = if app.settings().secure_cookies { "; Secure" } else { "" };
    let cookie = format!(
        "{DEVICE_COOKIE}={value}; Path=/api/v1/auth; HttpOnly; SameSite=Strict; \
         Max-Age={DEVICE_COOKIE_MAX_AGE}{secure}"
    );
    HeaderValue::from_str(&cookie).expect("a device cookie is base64url, a dot and ASCII")
}

/// The session cookie: HttpOnly so scripts cannot read it, SameSite=Lax so other sites
/// cannot send it with their requests, Secure when Confab is served over https.
pub(super) fn session_cookie(app: &App, token: &str, max_age: i64) -> HeaderValue {
    let secure = if app.settings().secure_cookies { "; Secure" } else { "" };
    let cookie = format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
    );
    // The token is base64url and the rest is ASCII, so this is always a valid header.
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
}
