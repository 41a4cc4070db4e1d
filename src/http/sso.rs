//! Signing in with an identity provider over HTTP: what the sign-in screen offers, a
//! flow's start and callback, the sign-up of someone new, and the identities linked to
//! an account. The callback answers browsers, so it never answers with an error page:
//! every outcome is a redirect to Confab's own pages (docs/api.md).

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::accounts::{device_cookie, session_cookie, session_response};
use super::extract::{Auth, ClientAddr, JsonBody, PathParams, bad_origin, cookie, origin_allowed};
use crate::app::{
    App, CallbackParams, ProviderView, SignInMethodsView, SignupProposal, SsoOutcome,
};
use crate::domain::Timestamp;
use crate::error::{Error, Result};

/// Binds a flow to the browser that started it.
const FLOW_COOKIE: &str = "confab_sso";
/// Holds a pending sign-up's ticket.
const SIGNUP_COOKIE: &str = "confab_sso_signup";
/// Over plain http both cookies go only to the flow's own endpoints. Over https they take
/// the `__Host-` prefix, which browsers accept only from this very origin, over https, for
/// `Path=/`: no sibling subdomain and no man in the middle of plain http can plant a
/// cookie of their own flow (a login CSRF) under that name.
const COOKIE_PATH: &str = "/api/v1/auth/oidc";
const FLOW_COOKIE_SECS: i64 = 10 * 60;
const SIGNUP_COOKIE_SECS: i64 = 30 * 60;

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(methods))
        .routes(routes!(signup_proposal, signup))
        .routes(routes!(start))
        .routes(routes!(callback))
        .routes(routes!(identities))
        .routes(routes!(unlink))
}

#[derive(Serialize, ToSchema)]
struct Methods {
    password_login: bool,
    password_signup: bool,
    providers: Vec<ProviderView>,
}

/// How people may sign in here: password, and which identity providers.
#[utoipa::path(
    get,
    path = "/auth/methods",
    tag = "sso",
    security(()),
    responses((status = 200, description = "The sign-in methods.", body = Methods)),
)]
async fn methods(State(app): State<App>) -> Json<Methods> {
    let settings = app.settings();
    Json(Methods {
        password_login: settings.password_login,
        password_signup: settings.password_signup && settings.password_login,
        providers: app.sso_providers(),
    })
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
enum Intent {
    SignIn,
    Link,
}

#[derive(Deserialize, ToSchema)]
struct StartRequest {
    intent: Intent,
}

#[derive(Serialize, ToSchema)]
struct Started {
    authorization_url: String,
}

/// Starts signing in with (or linking) a provider: go to `authorization_url`.
#[utoipa::path(
    post,
    path = "/auth/oidc/{provider}/start",
    tag = "sso",
    security(()),
    params(("provider" = String, Path, description = "A configured provider's id (`GET /auth/methods`).")),
    request_body = StartRequest,
    responses(
        (status = 200, description = "Where to send the browser; the flow's cookie is set.", body = Started),
        (status = 401, description = "`unauthenticated`: linking needs a session."),
        (status = 403, description = "`bad_origin`: started from another site's page."),
        (status = 404, description = "`not_found`: no such provider."),
        (status = 502, description = "`sso_unavailable`: the provider cannot be reached."),
    ),
)]
async fn start(
    State(app): State<App>,
    ClientAddr(address): ClientAddr,
    auth: Option<Auth>,
    PathParams(provider): PathParams<String>,
    headers: HeaderMap,
    JsonBody(request): JsonBody<StartRequest>,
) -> Result<Response> {
    // The flow's cookie is set by this answer: another site must not start flows here.
    if !origin_allowed(&headers, &app) {
        return Err(bad_origin());
    }
    let link = match request.intent {
        Intent::SignIn => None,
        Intent::Link => Some(auth.ok_or(Error::Unauthenticated)?.session.user.id),
    };
    let started = app.sso_start(&provider, link, address).await?;
    let mut headers = HeaderMap::new();
    headers.insert(
        header::SET_COOKIE,
        flow_cookie(&app, FLOW_COOKIE, &started.browser, FLOW_COOKIE_SECS),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let body = Started { authorization_url: started.authorization_url };
    Ok((headers, Json(body)).into_response())
}

/// Where the provider sends the browser back. Always a redirect to Confab's page, with
/// `?sso=signup`, `?sso=linked` or `?sso_error=<code>` when not simply signed in.
#[utoipa::path(
    get,
    path = "/auth/oidc/{provider}/callback",
    tag = "sso",
    security(()),
    params(("provider" = String, Path, description = "A configured provider's id (`GET /auth/methods`)."), CallbackParams),
    responses((status = 303, description = "To `/`, signed in or told what happened.")),
)]
async fn callback(
    State(app): State<App>,
    ClientAddr(address): ClientAddr,
    auth: Result<Auth, Error>,
    PathParams(provider): PathParams<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    // Whatever the query holds, the answer is a redirect: unreadable parameters are none.
    let params = Query::<CallbackParams>::try_from_uri(&uri).map(|q| q.0).unwrap_or_default();
    let browser = cookie(&headers, &cookie_name(&app, FLOW_COOKIE));
    // A session that cannot be read (the database down) is none: the answer is still a
    // redirect.
    let user = auth.ok().map(|auth| auth.session.user.id);
    let outcome = app.sso_callback(&provider, params, browser.as_deref(), user, address).await;
    let mut headers = HeaderMap::new();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let to = match outcome {
        Ok(SsoOutcome::SignedIn(signed_in)) => {
            let max_age = (signed_in.expires_at.as_millis() - Timestamp::now().as_millis()) / 1000;
            headers.insert(
                header::SET_COOKIE,
                session_cookie(&app, signed_in.token.as_str(), max_age.max(0)),
            );
            headers.append(header::SET_COOKIE, device_cookie(&app, &signed_in.device_cookie));
            "/".to_owned()
        }
        Ok(SsoOutcome::Signup { ticket }) => {
            headers.insert(
                header::SET_COOKIE,
                flow_cookie(&app, SIGNUP_COOKIE, &ticket, SIGNUP_COOKIE_SECS),
            );
            "/?sso=signup".to_owned()
        }
        Ok(SsoOutcome::Linked) => "/?sso=linked".to_owned(),
        Err(refusal) => format!("/?sso_error={}", refusal.code()),
    };
    let location = HeaderValue::from_str(&to).unwrap_or_else(|_| HeaderValue::from_static("/"));
    headers.insert(header::LOCATION, location);
    (StatusCode::SEE_OTHER, headers).into_response()
}

/// The account a first sign-in with a provider proposes (from the sign-up cookie).
#[utoipa::path(
    get,
    path = "/auth/oidc/signup",
    tag = "sso",
    security(()),
    responses(
        (status = 200, description = "The proposal.", body = SignupProposal),
        (status = 404, description = "`not_found`: no sign-up under way (or it expired)."),
    ),
)]
async fn signup_proposal(
    State(app): State<App>,
    ClientAddr(address): ClientAddr,
    headers: HeaderMap,
) -> Result<Json<SignupProposal>> {
    let ticket = cookie(&headers, &cookie_name(&app, SIGNUP_COOKIE));
    Ok(Json(app.sso_signup_proposal(ticket.as_deref(), address).await?))
}

#[derive(Deserialize, ToSchema)]
struct SignupRequest {
    username: String,
    display_name: Option<String>,
}

/// Creates the account a first sign-in with a provider proposed, and signs in.
#[utoipa::path(
    post,
    path = "/auth/oidc/signup",
    tag = "sso",
    security(()),
    request_body = SignupRequest,
    responses(
        (status = 201, description = "Registered and signed in.", body = super::accounts::SessionResponse),
        (status = 403, description = "`bad_origin`: from another site's page."),
        (status = 404, description = "`not_found`: no sign-up under way (or it expired)."),
        (status = 409, description = "`username_taken`, `identity_taken`."),
        (status = 422, description = "`invalid_username`, `invalid_display_name`."),
    ),
)]
async fn signup(
    State(app): State<App>,
    ClientAddr(address): ClientAddr,
    headers: HeaderMap,
    JsonBody(request): JsonBody<SignupRequest>,
) -> Result<Response> {
    if !origin_allowed(&headers, &app) {
        return Err(bad_origin());
    }
    let ticket = cookie(&headers, &cookie_name(&app, SIGNUP_COOKIE));
    let display_name = request.display_name.as_deref();
    let signed_in =
        app.sso_signup(ticket.as_deref(), &request.username, display_name, address).await?;
    let mut response = session_response(&app, StatusCode::CREATED, &signed_in);
    response.headers_mut().append(header::SET_COOKIE, flow_cookie(&app, SIGNUP_COOKIE, "", 0));
    Ok(response)
}

/// The signed-in user's linked identities, and whether they have a password.
#[utoipa::path(
    get,
    path = "/me/identities",
    tag = "sso",
    responses((status = 200, description = "Your sign-in methods.", body = SignInMethodsView)),
)]
async fn identities(State(app): State<App>, auth: Auth) -> Result<Json<SignInMethodsView>> {
    Ok(Json(app.sign_in_methods(auth.session.user.id).await?))
}

/// Unlinks an identity.
#[utoipa::path(
    delete,
    path = "/me/identities/{identity_id}",
    tag = "sso",
    params(("identity_id" = String, Path, description = "An identity's id.")),
    responses(
        (status = 204, description = "Unlinked."),
        (status = 409, description = "`last_sign_in_method`: link another provider first."),
    ),
)]
async fn unlink(
    State(app): State<App>,
    auth: Auth,
    PathParams(identity): PathParams<String>,
) -> Result<StatusCode> {
    app.unlink_identity(auth.session.user.id, &identity).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A cookie for the flow's endpoints only. SameSite=Lax: the provider's redirect back is
/// a top-level navigation from another site, which Lax cookies go with.
fn flow_cookie(app: &App, name: &str, value: &str, max_age: i64) -> HeaderValue {
    let name = cookie_name(app, name);
    let cookie = if app.settings().secure_cookies {
        format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}; Secure")
    } else {
        format!("{name}={value}; Path={COOKIE_PATH}; HttpOnly; SameSite=Lax; Max-Age={max_age}")
    };
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A flow cookie's name: `__Host-` first over https.
fn cookie_name(app: &App, name: &str) -> String {
    if app.settings().secure_cookies { format!("__Host-{name}") } else { name.to_owned() }
}
