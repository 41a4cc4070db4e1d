//! An OpenID Connect identity provider on loopback, so that signing in with one is tested
//! against a real provider: discovery, a sign-in page a browser can click through, the
//! authorization code flow with PKCE (S256 only), state and nonce, and RS256 ID tokens
//! signed with keys it publishes at `/jwks`.
//!
//! A test decides who signs in ([`Provider::sign_in_as`]), can make the ID tokens wrong in
//! one way at a time ([`Provider::misbehave`]), rotate the signing key
//! ([`Provider::rotate_keys`]), take the provider down and bring it back on the same port
//! ([`Provider::stop`], [`Provider::start_again`]), and count the requests it served.
//!
//! All signing and JOSE is `openidconnect`'s (the provider-side types a relying party's
//! crate also has); keys are `rsa`'s. Nothing here is written for production: state lives
//! in memory and codes live a minute.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use openidconnect::core::{
    CoreIdToken, CoreIdTokenClaims, CoreJwsSigningAlgorithm, CoreRsaPrivateSigningKey,
};
use openidconnect::url::{Url, form_urlencoded};
use openidconnect::{
    AccessToken, Audience, EmptyAdditionalClaims, EndUserEmail, EndUserName, EndUserUsername,
    IssuerUrl, JsonWebKeyId, Nonce, PrivateSigningKey, StandardClaims, SubjectIdentifier,
};
use rand::Rng;
use rand::distr::Alphanumeric;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::PATIENCE;

/// What the sign-in page calls the provider, so a test can tell it is on that page.
pub const PROVIDER_NAME: &str = "Test Identity Provider";

/// How long an ID token (and the access token beside it) is valid.
const TOKEN_LIFETIME: Duration = Duration::from_secs(300);

/// How long an authorization code may wait to be exchanged.
const CODE_LIFETIME: Duration = Duration::from_secs(60);

/// Who signs in: the claims the ID token carries about the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: Option<bool>,
    pub name: Option<String>,
    pub preferred_username: Option<String>,
}

impl Identity {
    /// An identity with only a subject; add claims with the builder methods.
    pub fn new(subject: &str) -> Identity {
        Identity {
            subject: subject.to_owned(),
            email: None,
            email_verified: None,
            name: None,
            preferred_username: None,
        }
    }

    pub fn email(mut self, email: &str, verified: bool) -> Identity {
        self.email = Some(email.to_owned());
        self.email_verified = Some(verified);
        self
    }

    pub fn name(mut self, name: &str) -> Identity {
        self.name = Some(name.to_owned());
        self
    }

    pub fn username(mut self, username: &str) -> Identity {
        self.preferred_username = Some(username.to_owned());
        self
    }

    /// What the sign-in page shows: the name, else the username, email or subject.
    fn display_name(&self) -> &str {
        self.name
            .as_deref()
            .or(self.preferred_username.as_deref())
            .or(self.email.as_deref())
            .unwrap_or(&self.subject)
    }
}

/// Who signs in until a test says otherwise.
fn default_identity() -> Identity {
    Identity::new("test-user-1")
        .email("test.user@example.com", true)
        .name("Test User")
        .username("test.user")
}

/// One way for the ID tokens to be wrong, for the tests of a relying party's refusals.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Fault {
    /// Tokens as they should be.
    #[default]
    None,
    /// Signed by a key that is not published, under the published key's `kid`.
    BadSignature,
    /// `aud` is another client's id.
    WrongAudience,
    /// `iss` is another provider's URL.
    WrongIssuer,
    /// `iat` and `exp` an hour earlier than they should be, so expired.
    Expired,
    /// `nonce` is not the one of the authorization request.
    WrongNonce,
}

/// The query parameters of an authorization request, as the provider received them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthorizationRequest {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
}

impl AuthorizationRequest {
    fn from_query(query: &HashMap<String, String>) -> AuthorizationRequest {
        let field = |name: &str| query.get(name).cloned();
        AuthorizationRequest {
            response_type: field("response_type"),
            client_id: field("client_id"),
            redirect_uri: field("redirect_uri"),
            scope: field("scope"),
            state: field("state"),
            nonce: field("nonce"),
            code_challenge: field("code_challenge"),
            code_challenge_method: field("code_challenge_method"),
        }
    }

    /// The scopes asked for, one by one.
    pub fn scopes(&self) -> Vec<&str> {
        self.scope.as_deref().map(|scope| scope.split(' ').collect()).unwrap_or_default()
    }
}

/// The provider: its address, its state (which outlives a stop), and the task serving it
/// while it is up.
pub struct Provider {
    address: SocketAddr,
    shared: Arc<Shared>,
    /// The server's shutdown signal and task; `None` while stopped.
    running: Option<(CancellationToken, JoinHandle<()>)>,
    /// For [`Provider::approve`] and [`Provider::deny`]: never follows redirects, as the
    /// `Location` is what they return.
    http: reqwest::Client,
}

/// What the handlers share.
struct Shared {
    /// The base URL: `iss` in ID tokens and the discovery base, without a trailing slash.
    issuer: String,
    client_id: String,
    client_secret: String,
    state: Mutex<ProviderState>,
    token_requests: AtomicU64,
    jwks_requests: AtomicU64,
    discovery_requests: AtomicU64,
}

/// What changes as tests and requests go.
struct ProviderState {
    /// Who the next authorization signs in as.
    identity: Identity,
    fault: Fault,
    /// Signs ID tokens; the only key `/jwks` publishes.
    signing_key: KeyPair,
    /// Sign-in pages served and not yet answered, by their `request` id.
    pending: HashMap<String, Grant>,
    /// Codes issued and not yet exchanged. A code leaves on its first exchange, whatever
    /// the outcome, so it can never be used twice.
    codes: HashMap<String, IssuedCode>,
    last_authorization: Option<AuthorizationRequest>,
}

/// What an approved authorization grants, bound to the request that asked for it.
#[derive(Clone)]
struct Grant {
    client_id: String,
    redirect_uri: Url,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: String,
    identity: Identity,
}

struct IssuedCode {
    grant: Grant,
    issued_at: Instant,
}

/// An RSA key as `openidconnect` loads it: PKCS#1 PEM, and its key id.
#[derive(Clone)]
struct KeyPair {
    kid: String,
    pem: String,
}

impl KeyPair {
    /// A fresh 2048-bit key with a random `kid`. Generating one takes a noticeable
    /// fraction of a second, so it runs off the async workers.
    async fn generate() -> KeyPair {
        tokio::task::spawn_blocking(|| {
            use rsa::pkcs1::EncodeRsaPrivateKey;
            let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048)
                .expect("generate an RSA key");
            let pem = key.to_pkcs1_pem(rsa::pkcs1::LineEnding::LF).expect("encode the key");
            KeyPair { kid: format!("key-{}", random_string(12)), pem: pem.to_string() }
        })
        .await
        .expect("key generation does not panic")
    }

    /// The key to sign with, named `kid`.
    fn signing_key(&self, kid: &str) -> CoreRsaPrivateSigningKey {
        CoreRsaPrivateSigningKey::from_pem(&self.pem, Some(JsonWebKeyId::new(kid.to_owned())))
            .expect("a key this module generated loads")
    }

    /// The public key as a JWK, with `use` and `alg` (which `openidconnect` leaves out).
    fn public_jwk(&self) -> Value {
        let mut jwk = serde_json::to_value(self.signing_key(&self.kid).as_verification_key())
            .expect("a JWK serializes");
        jwk["alg"] = json!("RS256");
        jwk["use"] = json!("sig");
        jwk
    }
}

/// The key behind [`Fault::BadSignature`]: one per test process, published by no provider.
async fn rogue_key() -> &'static KeyPair {
    static ROGUE: tokio::sync::OnceCell<KeyPair> = tokio::sync::OnceCell::const_new();
    ROGUE.get_or_init(KeyPair::generate).await
}

fn random_string(length: usize) -> String {
    rand::rng().sample_iter(Alphanumeric).take(length).map(char::from).collect()
}

impl Provider {
    /// A provider for one client, serving on a free loopback port.
    pub async fn start(client_id: &str, client_secret: &str) -> Provider {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the provider");
        let address = listener.local_addr().expect("local addr");
        let state = ProviderState {
            identity: default_identity(),
            fault: Fault::None,
            signing_key: KeyPair::generate().await,
            pending: HashMap::new(),
            codes: HashMap::new(),
            last_authorization: None,
        };
        let shared = Arc::new(Shared {
            issuer: format!("http://{address}"),
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            state: Mutex::new(state),
            token_requests: AtomicU64::new(0),
            jwks_requests: AtomicU64::new(0),
            discovery_requests: AtomicU64::new(0),
        });
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("an HTTP client");
        let mut provider = Provider { address, shared, running: None, http };
        provider.serve(listener);
        provider
    }

    fn serve(&mut self, listener: TcpListener) {
        let shutdown = CancellationToken::new();
        let signal = shutdown.clone();
        let app = router(self.shared.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(signal.cancelled_owned())
                .await
                .expect("the provider serves");
        });
        self.running = Some((shutdown, task));
    }

    /// The base URL, `http://127.0.0.1:PORT`: the `iss` of its tokens.
    pub fn issuer(&self) -> String {
        self.shared.issuer.clone()
    }

    /// Who the authorizations from now on sign in as (captured when `/authorize` is
    /// served, so a sign-in page already shown keeps its identity).
    pub fn sign_in_as(&self, identity: Identity) {
        self.shared.lock().identity = identity;
    }

    /// Makes the ID tokens issued from now on wrong in one way; `Fault::None` mends them.
    pub fn misbehave(&self, fault: Fault) {
        self.shared.lock().fault = fault;
    }

    /// Signs with a new key, under a new `kid`, from now on, and publishes only that key:
    /// a relying party holding the old key set must fetch it again.
    pub async fn rotate_keys(&self) {
        let key = KeyPair::generate().await;
        self.shared.lock().signing_key = key;
    }

    /// The `kid` ID tokens are signed under now.
    pub fn current_kid(&self) -> String {
        self.shared.lock().signing_key.kid.clone()
    }

    /// Stops serving and waits until the port refuses connections. State and keys stay.
    pub async fn stop(&mut self) {
        let Some((shutdown, task)) = self.running.take() else { return };
        shutdown.cancel();
        tokio::time::timeout(PATIENCE, task)
            .await
            .expect("the provider stops")
            .expect("the provider does not panic");
    }

    /// Serves again on the same port, with the same state and keys.
    pub async fn start_again(&mut self) {
        assert!(self.running.is_none(), "the provider is already running");
        let listener = TcpListener::bind(self.address).await.expect("rebind the provider's port");
        self.serve(listener);
    }

    pub fn token_requests(&self) -> u64 {
        self.shared.token_requests.load(Ordering::SeqCst)
    }

    pub fn jwks_requests(&self) -> u64 {
        self.shared.jwks_requests.load(Ordering::SeqCst)
    }

    pub fn discovery_requests(&self) -> u64 {
        self.shared.discovery_requests.load(Ordering::SeqCst)
    }

    /// The query of the latest request to `/authorize`, valid or not.
    pub fn last_authorization(&self) -> Option<AuthorizationRequest> {
        self.shared.lock().last_authorization.clone()
    }

    /// Does what a user does in a browser: opens `authorize_url`, checks that it is the
    /// sign-in page, and clicks "approve". Returns where the provider sends the browser
    /// (the relying party's callback with `code` and `state`).
    pub async fn approve(&self, authorize_url: &str) -> String {
        self.answer_sign_in(authorize_url, "/approve").await
    }

    /// As [`Provider::approve`], but clicks "deny": the callback carries
    /// `error=access_denied`.
    pub async fn deny(&self, authorize_url: &str) -> String {
        self.answer_sign_in(authorize_url, "/deny").await
    }

    async fn answer_sign_in(&self, authorize_url: &str, answer: &str) -> String {
        let response = self.http.get(authorize_url).send().await.expect("GET /authorize");
        let status = response.status();
        let page = response.text().await.expect("the sign-in page");
        assert_eq!(status, reqwest::StatusCode::OK, "the sign-in page: {page}");
        assert!(page.contains(PROVIDER_NAME), "not the sign-in page: {page}");
        let request = hidden_request_id(&page).expect("the sign-in page names its request");
        let response = self
            .http
            .post(format!("{}{answer}", self.shared.issuer))
            .form(&[("request", request)])
            .send()
            .await
            .expect("POST the answer");
        assert_eq!(response.status(), reqwest::StatusCode::SEE_OTHER, "{answer} redirects");
        let location = response.headers().get(reqwest::header::LOCATION).expect("a Location");
        location.to_str().expect("an ASCII Location").to_owned()
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        if let Some((shutdown, _)) = &self.running {
            shutdown.cancel();
        }
    }
}

/// The value of the sign-in page's hidden `request` field.
fn hidden_request_id(page: &str) -> Option<&str> {
    const FIELD: &str = r#"name="request" value=""#;
    let start = page.find(FIELD)? + FIELD.len();
    let length = page[start..].find('"')?;
    Some(&page[start..start + length])
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, ProviderState> {
        // A panicking test thread must not take every later request down with it.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/jwks", get(jwks))
        .route("/authorize", get(authorize))
        .route("/approve", post(approve))
        .route("/deny", post(deny))
        .route("/token", post(token))
        .with_state(shared)
}

async fn discovery(State(shared): State<Arc<Shared>>) -> Response {
    shared.discovery_requests.fetch_add(1, Ordering::SeqCst);
    let issuer = &shared.issuer;
    axum::Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "email", "profile"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "grant_types_supported": ["authorization_code"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": [
            "iss", "sub", "aud", "iat", "exp", "nonce",
            "email", "email_verified", "name", "preferred_username"
        ],
    }))
    .into_response()
}

async fn jwks(State(shared): State<Arc<Shared>>) -> Response {
    shared.jwks_requests.fetch_add(1, Ordering::SeqCst);
    let key = shared.lock().signing_key.clone();
    axum::Json(json!({ "keys": [key.public_jwk()] })).into_response()
}

/// Serves the sign-in page, or says what is wrong with the request: on the page itself
/// when the client or its redirect URI cannot be trusted, else back at the redirect URI.
async fn authorize(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let request = AuthorizationRequest::from_query(&query);
    shared.lock().last_authorization = Some(request.clone());
    if request.client_id.as_deref() != Some(shared.client_id.as_str()) {
        return error_page("This client is not registered with the provider.");
    }
    let Some(redirect_uri) = request.redirect_uri.as_deref().and_then(loopback_redirect) else {
        return error_page("The redirect URI is missing or not allowed.");
    };
    let refuse = |error: &str, description: &str| {
        let pairs = [("error", error), ("error_description", description)];
        redirect_to(&redirect_uri, &pairs, request.state.as_deref())
    };
    if request.response_type.as_deref() != Some("code") {
        return refuse("unsupported_response_type", "only the code flow is supported");
    }
    if !request.scopes().contains(&"openid") {
        return refuse("invalid_scope", "the openid scope is required");
    }
    let Some(code_challenge) = request.code_challenge.clone() else {
        return refuse("invalid_request", "PKCE is required");
    };
    if request.code_challenge_method.as_deref() != Some("S256") {
        return refuse("invalid_request", "only the S256 code challenge method is supported");
    }
    let id = random_string(24);
    let mut state = shared.lock();
    let grant = Grant {
        client_id: shared.client_id.clone(),
        redirect_uri,
        state: request.state.clone(),
        nonce: request.nonce.clone(),
        code_challenge,
        identity: state.identity.clone(),
    };
    let page = sign_in_page(&id, &grant.identity);
    state.pending.insert(id, grant);
    Html(page).into_response()
}

/// The redirect URI if it goes back to this machine over HTTP (any port), as only tests
/// use this provider.
fn loopback_redirect(uri: &str) -> Option<Url> {
    if !(uri.starts_with("http://127.0.0.1:") || uri.starts_with("http://localhost:")) {
        return None;
    }
    Url::parse(uri).ok()
}

fn sign_in_page(request: &str, identity: &Identity) -> String {
    let name = escape_html(identity.display_name());
    let request = escape_html(request);
    format!(
        r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Sign in - {PROVIDER_NAME}</title></head>
<body>
<h1>{PROVIDER_NAME}</h1>
<p id="identity">Continue as {name}</p>
<form method="post" action="/approve">
<input type="hidden" name="request" value="{request}">
<button type="submit" id="approve">Continue as {name}</button>
</form>
<form method="post" action="/deny">
<input type="hidden" name="request" value="{request}">
<button type="submit" id="deny">Cancel</button>
</form>
</body>
</html>
"#
    )
}

fn error_page(message: &str) -> Response {
    let message = escape_html(message);
    let page = format!(
        "<!doctype html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\">\
         <title>Error - {PROVIDER_NAME}</title></head>\n<body>\n<h1>{PROVIDER_NAME}</h1>\n\
         <p id=\"error\">{message}</p>\n</body>\n</html>\n"
    );
    (StatusCode::BAD_REQUEST, Html(page)).into_response()
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// A 303 to `uri` with `pairs` and then `state` (if any) added to its query.
fn redirect_to(uri: &Url, pairs: &[(&str, &str)], state: Option<&str>) -> Response {
    let mut target = uri.clone();
    {
        let mut query = target.query_pairs_mut();
        query.extend_pairs(pairs);
        if let Some(state) = state {
            query.append_pair("state", state);
        }
    }
    Redirect::to(target.as_str()).into_response()
}

#[derive(serde::Deserialize)]
struct SignInAnswer {
    request: String,
}

async fn approve(State(shared): State<Arc<Shared>>, Form(answer): Form<SignInAnswer>) -> Response {
    let mut state = shared.lock();
    let Some(grant) = state.pending.remove(&answer.request) else {
        return error_page("This sign-in request is unknown or already answered.");
    };
    let code = random_string(32);
    let response = redirect_to(&grant.redirect_uri, &[("code", &code)], grant.state.as_deref());
    state.codes.insert(code, IssuedCode { grant, issued_at: Instant::now() });
    response
}

async fn deny(State(shared): State<Arc<Shared>>, Form(answer): Form<SignInAnswer>) -> Response {
    let Some(grant) = shared.lock().pending.remove(&answer.request) else {
        return error_page("This sign-in request is unknown or already answered.");
    };
    let pairs = [("error", "access_denied"), ("error_description", "the user declined")];
    redirect_to(&grant.redirect_uri, &pairs, grant.state.as_deref())
}

/// An OAuth error answer from the token endpoint (RFC 6749, section 5.2).
fn token_error(status: StatusCode, error: &str, description: &str) -> Response {
    let body = axum::Json(json!({ "error": error, "error_description": description }));
    let mut response = (status, no_store(), body).into_response();
    if status == StatusCode::UNAUTHORIZED {
        let challenge = HeaderValue::from_static(r#"Basic realm="token""#);
        response.headers_mut().insert(header::WWW_AUTHENTICATE, challenge);
    }
    response
}

fn no_store() -> [(header::HeaderName, &'static str); 2] {
    [(header::CACHE_CONTROL, "no-store"), (header::PRAGMA, "no-cache")]
}

async fn token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    shared.token_requests.fetch_add(1, Ordering::SeqCst);
    let field = |name: &str| form.get(name).map(String::as_str);
    if field("grant_type") != Some("authorization_code") {
        return token_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "only authorization_code",
        );
    }
    let (Some(code), Some(redirect_uri), Some(verifier)) =
        (field("code"), field("redirect_uri"), field("code_verifier"))
    else {
        return token_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "code, redirect_uri and code_verifier are required",
        );
    };
    match client_credentials(&headers, &form) {
        Some((id, secret)) if id == shared.client_id && secret == shared.client_secret => {}
        _ => return token_error(StatusCode::UNAUTHORIZED, "invalid_client", "unknown client"),
    }
    let (issued, fault, signing_key) = {
        let mut state = shared.lock();
        (state.codes.remove(code), state.fault, state.signing_key.clone())
    };
    let invalid_grant =
        |description: &str| token_error(StatusCode::BAD_REQUEST, "invalid_grant", description);
    let Some(IssuedCode { grant, issued_at }) = issued else {
        return invalid_grant("unknown or already used code");
    };
    if issued_at.elapsed() > CODE_LIFETIME {
        return invalid_grant("expired code");
    }
    if grant.client_id != shared.client_id || grant.redirect_uri.as_str() != redirect_uri {
        return invalid_grant("the code was issued to another client or redirect_uri");
    }
    if URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) != grant.code_challenge {
        return invalid_grant("the code_verifier does not match the code_challenge");
    }
    let access_token = AccessToken::new(random_string(32));
    let id_token = id_token(&shared, &grant, fault, &signing_key, &access_token).await;
    let body = axum::Json(json!({
        "access_token": access_token.secret(),
        "token_type": "Bearer",
        "expires_in": TOKEN_LIFETIME.as_secs(),
        "id_token": id_token.to_string(),
    }));
    (no_store(), body).into_response()
}

/// The client's id and secret from HTTP Basic (each form-urlencoded first, RFC 6749
/// section 2.3.1), else from the form.
fn client_credentials(
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Option<(String, String)> {
    if let Some(authorization) = headers.get(header::AUTHORIZATION) {
        let encoded = authorization.to_str().ok()?.strip_prefix("Basic ")?;
        let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
        let (id, secret) = decoded.split_once(':')?;
        return Some((form_decode(id), form_decode(secret)));
    }
    Some((form.get("client_id")?.clone(), form.get("client_secret")?.clone()))
}

/// One form-urlencoded value, decoded (`+` is a space, `%XX` a byte).
fn form_decode(text: &str) -> String {
    let pair = format!("value={text}");
    form_urlencoded::parse(pair.as_bytes())
        .next()
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default()
}

/// The ID token for `grant`, wrong in the way `fault` says.
async fn id_token(
    shared: &Shared,
    grant: &Grant,
    fault: Fault,
    signing_key: &KeyPair,
    access_token: &AccessToken,
) -> CoreIdToken {
    let now = chrono::Utc::now();
    let issued_at = if fault == Fault::Expired { now - chrono::Duration::hours(1) } else { now };
    let lifetime = chrono::Duration::from_std(TOKEN_LIFETIME).expect("a short lifetime");
    let issuer = match fault {
        Fault::WrongIssuer => "http://127.0.0.1:1/another-issuer".to_owned(),
        _ => shared.issuer.clone(),
    };
    let audience = match fault {
        Fault::WrongAudience => format!("{}-other", shared.client_id),
        _ => grant.client_id.clone(),
    };
    let nonce = match fault {
        Fault::WrongNonce => Some(random_string(24)),
        _ => grant.nonce.clone(),
    };
    let identity = &grant.identity;
    let standard = StandardClaims::new(SubjectIdentifier::new(identity.subject.clone()))
        .set_email(identity.email.clone().map(EndUserEmail::new))
        .set_email_verified(identity.email_verified)
        .set_name(identity.name.clone().map(|name| EndUserName::new(name).into()))
        .set_preferred_username(identity.preferred_username.clone().map(EndUserUsername::new));
    let claims = CoreIdTokenClaims::new(
        IssuerUrl::new(issuer).expect("an issuer URL"),
        vec![Audience::new(audience)],
        issued_at + lifetime,
        issued_at,
        standard,
        EmptyAdditionalClaims {},
    )
    .set_nonce(nonce.map(Nonce::new));
    // A bad signature is made with a key nobody publishes, under the published kid, so
    // that only checking the signature itself can catch it.
    let key = match fault {
        Fault::BadSignature => rogue_key().await.signing_key(&signing_key.kid),
        _ => signing_key.signing_key(&signing_key.kid),
    };
    CoreIdToken::new(
        claims,
        &key,
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        Some(access_token),
        None,
    )
    .expect("sign the ID token")
}
