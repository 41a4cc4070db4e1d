//! Accounts over HTTP: register, log in and out, who am I, find people.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{
    Auth, ClientAddr, DEVICE_COOKIE, JsonBody, PathParams, QueryParams, SESSION_COOKIE, cookie,
};
use crate::app::{App, SignedIn};
use crate::domain::{Timestamp, User};
use crate::error::Result;

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(me, update_profile))
        .routes(routes!(search_users))
        .routes(routes!(user))
}

#[derive(Deserialize, ToSchema)]
struct RegisterRequest {
    /// 3–32 characters of `a-z 0-9 _ . -`; capitals are folded to lower case.
    username: String,
    /// 8–256 characters, not the username.
    password: String,
    /// 1–64 characters; the username when absent.
    display_name: Option<String>,
}

#[derive(Deserialize, ToSchema)]
struct LoginRequest {
    username: String,
    password: String,
}

/// A new session: the token to send as `Authorization: Bearer`, also set as the cookie.
#[derive(Serialize, ToSchema)]
pub(super) struct SessionResponse<'a> {
    user: &'a User,
    token: &'a str,
    expires_at: Timestamp,
}

/// Creates an account and signs in.
#[utoipa::path(
    post,
    path = "/auth/register",
    tag = "accounts",
    security(()),
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "Registered and signed in; the session cookie is set.", body = SessionResponse),
        (status = 403, description = "`password_signup_disabled`: this server signs people up only through identity providers."),
        (status = 409, description = "`username_taken`: taken, or a look-alike of a taken one."),
        (status = 422, description = "`invalid_username`, `invalid_password`, `invalid_display_name`."),
    ),
)]
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

/// Signs in with a username and password.
#[utoipa::path(
    post,
    path = "/auth/login",
    tag = "accounts",
    security(()),
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in; the session cookie is set.", body = SessionResponse),
        (status = 401, description = "`invalid_credentials`: a wrong password or an unknown user."),
        (status = 403, description = "`password_login_disabled`: this server signs people in only through identity providers; `account_deactivated`: an administrator deactivated this account (said only after the right password)."),
    ),
)]
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

/// Ends the session and clears its cookie.
#[utoipa::path(
    post,
    path = "/auth/logout",
    tag = "accounts",
    responses((status = 204, description = "Signed out.")),
)]
async fn logout(State(app): State<App>, auth: Auth) -> Result<Response> {
    app.logout(&auth.token).await?;
    let mut headers = HeaderMap::new();
    headers.insert(header::SET_COOKIE, session_cookie(&app, "", 0));
    Ok((StatusCode::NO_CONTENT, headers).into_response())
}

/// The caller, and whether they administer the server (the client shows administration).
#[derive(Serialize, ToSchema)]
struct Me {
    #[serde(flatten)]
    user: User,
    /// Whether you administer this server (the administration endpoints answer you).
    admin: bool,
}

/// The signed-in user.
#[utoipa::path(
    get,
    path = "/me",
    tag = "accounts",
    responses((status = 200, description = "You.", body = Me)),
)]
async fn me(auth: Auth) -> Json<Me> {
    Json(Me { user: auth.session.user, admin: auth.session.admin })
}

/// The fields to change; those absent stay.
#[derive(Deserialize, ToSchema)]
struct ProfileRequest {
    /// 1–64 characters.
    display_name: Option<String>,
    /// At most 300 characters; empty removes it.
    bio: Option<String>,
}

/// Changes the signed-in user's display name or bio.
#[utoipa::path(
    patch,
    path = "/me",
    tag = "accounts",
    request_body = ProfileRequest,
    responses(
        (status = 200, description = "You, changed.", body = User),
        (status = 422, description = "`invalid_display_name`, `invalid_bio`."),
    ),
)]
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

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct UserSearch {
    /// The start of a username or display name; everyone when empty.
    #[serde(default)]
    q: String,
    /// 1 to 50; 20 when absent.
    limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
struct Users {
    users: Vec<User>,
}

/// Finds people by username or display name.
#[utoipa::path(
    get,
    path = "/users",
    tag = "accounts",
    params(UserSearch),
    responses(
        (status = 200, description = "People whose names start so.", body = Users),
        (status = 422, description = "`invalid_limit`."),
    ),
)]
async fn search_users(
    State(app): State<App>,
    _auth: Auth,
    QueryParams(query): QueryParams<UserSearch>,
) -> Result<Json<Users>> {
    let users = app.search_users(&query.q, query.limit).await?;
    Ok(Json(Users { users }))
}

/// One user.
#[utoipa::path(
    get,
    path = "/users/{user_id}",
    tag = "accounts",
    params(("user_id" = String, Path, description = "A user's id.")),
    responses((status = 200, description = "The user.", body = User)),
)]
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
