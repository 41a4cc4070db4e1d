//! The test identity provider (`support/oidc.rs`) is itself correct: `openidconnect`, as a
//! relying party exactly as Confab uses it, discovers it, signs in through it with PKCE,
//! state and nonce, and verifies its ID tokens; and each fault the provider can be told to
//! commit is refused for the reason it should be.

use std::collections::HashMap;

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreErrorResponseType, CoreIdTokenClaims,
    CoreProviderMetadata, CoreTokenResponse,
};
use openidconnect::reqwest;
use openidconnect::url::Url;
use openidconnect::{
    AccessTokenHash, AuthType, AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret,
    CsrfToken, DiscoveryError, EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RequestTokenError,
    Scope, SignatureVerificationError, TokenResponse,
};
use serde_json::Value;

use crate::support::oidc::{Fault, Identity, PROVIDER_NAME, Provider};

const CLIENT_ID: &str = "confab-test";
/// With characters that HTTP Basic must form-urlencode first (RFC 6749, section 2.3.1).
const CLIENT_SECRET: &str = "s3cret: with/odd&chars+";
/// The relying party's callback; nothing listens there, as only its URL is used.
const CALLBACK: &str = "http://127.0.0.1:9/api/v1/auth/oidc/callback";

/// A client as `CoreClient::from_provider_metadata` makes it, with a redirect URI.
type RelyingParty = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// As Confab builds it: redirects are not followed (the token endpoint must not send the
/// client elsewhere).
fn http_client() -> reqwest::Client {
    reqwest::ClientBuilder::new()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("an HTTP client")
}

async fn discover(
    provider: &Provider,
    http: &reqwest::Client,
) -> Result<CoreProviderMetadata, DiscoveryError<openidconnect::HttpClientError<reqwest::Error>>> {
    let issuer = IssuerUrl::new(provider.issuer()).expect("an issuer URL");
    CoreProviderMetadata::discover_async(issuer, http).await
}

async fn relying_party(provider: &Provider, http: &reqwest::Client) -> RelyingParty {
    let metadata = discover(provider, http).await.expect("discovery");
    relying_party_with(metadata, CLIENT_SECRET, CALLBACK)
}

fn relying_party_with(
    metadata: CoreProviderMetadata,
    secret: &str,
    callback: &str,
) -> RelyingParty {
    CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(CLIENT_ID.to_owned()),
        Some(ClientSecret::new(secret.to_owned())),
    )
    .set_redirect_uri(RedirectUrl::new(callback.to_owned()).expect("a redirect URL"))
}

/// What the relying party keeps between sending the browser away and its return.
struct Started {
    url: Url,
    state: CsrfToken,
    nonce: Nonce,
    verifier: PkceCodeVerifier,
}

fn begin(client: &RelyingParty) -> Started {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".to_owned()))
        .add_scope(Scope::new("profile".to_owned()))
        .set_pkce_challenge(challenge)
        .url();
    Started { url, state, nonce, verifier }
}

/// The query parameters of the callback URL the provider sent the browser to.
fn callback_parameters(location: &str) -> HashMap<String, String> {
    let url = Url::parse(location).expect("an absolute callback URL");
    assert!(location.starts_with(CALLBACK), "back at the callback: {location}");
    url.query_pairs().into_owned().collect()
}

/// Signs in through the provider's approval: the code returned, after checking the state.
async fn approved_code(provider: &Provider, started: &Started) -> AuthorizationCode {
    let location = provider.approve(started.url.as_str()).await;
    let parameters = callback_parameters(&location);
    assert_eq!(parameters.get("state"), Some(started.state.secret()), "the state comes back");
    AuthorizationCode::new(parameters.get("code").expect("a code").clone())
}

type TokenResult = Result<
    CoreTokenResponse,
    RequestTokenError<
        openidconnect::HttpClientError<reqwest::Error>,
        openidconnect::StandardErrorResponse<CoreErrorResponseType>,
    >,
>;

async fn exchange(
    client: &RelyingParty,
    http: &reqwest::Client,
    code: AuthorizationCode,
    verifier: PkceCodeVerifier,
) -> TokenResult {
    client
        .exchange_code(code)
        .expect("discovery named a token endpoint")
        .set_pkce_verifier(verifier)
        .request_async(http)
        .await
}

/// The whole flow up to the token response, and the nonce to check it with.
async fn sign_in(
    provider: &Provider,
    client: &RelyingParty,
    http: &reqwest::Client,
) -> (CoreTokenResponse, Nonce) {
    let started = begin(client);
    let code = approved_code(provider, &started).await;
    let tokens = exchange(client, http, code, started.verifier).await.expect("tokens");
    (tokens, started.nonce)
}

fn verify(
    client: &RelyingParty,
    tokens: &CoreTokenResponse,
    nonce: &Nonce,
) -> Result<CoreIdTokenClaims, ClaimsVerificationError> {
    let id_token = tokens.id_token().expect("an ID token");
    id_token.claims(&client.id_token_verifier(), nonce).cloned()
}

fn assert_server_error(result: TokenResult, expected: CoreErrorResponseType) {
    match result {
        Err(RequestTokenError::ServerResponse(response)) => {
            assert_eq!(*response.error(), expected, "{response:?}")
        }
        Err(other) => panic!("expected {expected:?}, got {other:?}"),
        Ok(_) => panic!("expected {expected:?}, got tokens"),
    }
}

#[tokio::test]
async fn discovery_publishes_the_endpoints_and_the_signing_key() {
    let provider = Provider::start(CLIENT_ID, CLIENT_SECRET).await;
    let http = http_client();
    let issuer = provider.issuer();
    assert!(issuer.starts_with("http://127.0.0.1:") && !issuer.ends_with('/'), "{issuer}");

    let metadata = discover(&provider, &http).await.expect("discovery");
    assert_eq!(metadata.issuer().as_str(), issuer);
    assert_eq!(metadata.authorization_endpoint().as_str(), format!("{issuer}/authorize"));
    let token_endpoint = metadata.token_endpoint().expect("a token endpoint");
    assert_eq!(token_endpoint.as_str(), format!("{issuer}/token"));
    assert_eq!(metadata.jwks_uri().as_str(), format!("{issuer}/jwks"));
    assert_eq!(metadata.jwks().keys().len(), 1, "one published key");
    assert_eq!((provider.discovery_requests(), provider.jwks_requests()), (1, 1));

    let raw: Value = http
        .get(format!("{issuer}/.well-known/openid-configuration"))
        .send()
        .await
        .expect("discovery")
        .json()
        .await
        .expect("JSON");
    assert_eq!(raw["code_challenge_methods_supported"], serde_json::json!(["S256"]));
    assert_eq!(raw["id_token_signing_alg_values_supported"], serde_json::json!(["RS256"]));

    let jwks: Value =
        http.get(format!("{issuer}/jwks")).send().await.expect("jwks").json().await.expect("JSON");
    let key = &jwks["keys"][0];
    assert_eq!((key["kty"].as_str(), key["use"].as_str()), (Some("RSA"), Some("sig")), "{key}");
    assert_eq!(key["alg"], "RS256", "{key}");
    assert_eq!(key["kid"].as_str(), Some(provider.current_kid().as_str()), "{key}");
}

#[tokio::test]
async fn the_code_flow_with_pkce_yields_a_verified_id_token_naming_the_identity() {
    let provider = Provider::start(CLIENT_ID, CLIENT_SECRET).await;
    provider.sign_in_as(
        Identity::new("sub-ada")
            .email("ada@example.com", true)
            .name("Ada Lovelace")
            .username("ada"),
    );
    let http = http_client();
    let client = relying_party(&provider, &http).await;
    let started = begin(&client);

    let page = http.get(started.url.as_str()).send().await.expect("the sign-in page");
    let page = page.text().await.expect("HTML");
    assert!(page.contains(PROVIDER_NAME) && page.contains("Continue as Ada Lovelace"), "{page}");
    assert!(page.contains(r#"id="approve""#) && page.contains(r#"id="deny""#), "{page}");

    let sent = provider.last_authorization().expect("an authorization request");
    assert_eq!(sent.code_challenge_method.as_deref(), Some("S256"));
    assert!(sent.code_challenge.is_some(), "PKCE sent");
    assert_eq!(sent.nonce.as_deref(), Some(started.nonce.secret().as_str()));
    assert_eq!(sent.state.as_deref(), Some(started.state.secret().as_str()));
    assert_eq!(sent.redirect_uri.as_deref(), Some(CALLBACK));
    for scope in ["openid", "email", "profile"] {
        assert!(sent.scopes().contains(&scope), "{scope} in {:?}", sent.scope);
    }

    let code = approved_code(&provider, &started).await;
    let tokens = exchange(&client, &http, code, started.verifier).await.expect("tokens");
    assert_eq!(provider.token_requests(), 1);
    let claims = verify(&client, &tokens, &started.nonce).expect("a valid ID token");
    assert_eq!(claims.subject().as_str(), "sub-ada");
    assert_eq!(claims.email().map(|email| email.as_str()), Some("ada@example.com"));
    assert_eq!(claims.email_verified(), Some(true));
    let name = claims.name().and_then(|name| name.get(None)).map(|name| name.as_str());
    assert_eq!(name, Some("Ada Lovelace"));
    assert_eq!(claims.preferred_username().map(|name| name.as_str()), Some("ada"));
    assert_eq!(claims.issuer().as_str(), provider.issuer());
    assert_eq!(claims.audiences().iter().map(|aud| aud.as_str()).collect::<Vec<_>>(), [CLIENT_ID]);

    let id_token = tokens.id_token().expect("an ID token");
    let expected_hash = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().expect("signed"),
        id_token.signing_key(&client.id_token_verifier()).expect("the key"),
    )
    .expect("hash");
    assert_eq!(claims.access_token_hash(), Some(&expected_hash), "at_hash matches");
}

#[tokio::test]
async fn client_secret_post_is_accepted_and_a_wrong_secret_is_invalid_client() {
    let provider = Provider::start(CLIENT_ID, CLIENT_SECRET).await;
    let http = http_client();
    let metadata = discover(&provider, &http).await.expect("discovery");

    let in_the_body = relying_party_with(metadata.clone(), CLIENT_SECRET, CALLBACK)
        .set_auth_type(AuthType::RequestBody);
    let (tokens, nonce) = sign_in(&provider, &in_the_body, &http).await;
    verify(&in_the_body, &tokens, &nonce).expect("a valid ID token");

    let wrong = relying_party_with(metadata, "not-the-secret", CALLBACK);
    let started = begin(&wrong);
    let code = approved_code(&provider, &started).await;
    let result = exchange(&wrong, &http, code, started.verifier).await;
    assert_server_error(result, CoreErrorResponseType::InvalidClient);
}

#[tokio::test]
async fn each_fault_fails_verification_for_its_own_reason() {
    let provider = Provider::start(CLIENT_ID, CLIENT_SECRET).await;
    let http = http_client();
    let client = relying_party(&provider, &http).await;
    let faults = [
        Fault::BadSignature,
        Fault::WrongAudience,
        Fault::WrongIssuer,
        Fault::Expired,
        Fault::WrongNonce,
    ];
    for fault in faults {
        provider.misbehave(fault);
        let (tokens, nonce) = sign_in(&provider, &client, &http).await;
        let error = verify(&client, &tokens, &nonce).expect_err("a faulty ID token is refused");
        let right_reason = match fault {
            Fault::BadSignature => matches!(
                error,
                ClaimsVerificationError::SignatureVerification(
                    SignatureVerificationError::CryptoError(_)
                )
            ),
            Fault::WrongAudience => matches!(error, ClaimsVerificationError::InvalidAudience(_)),
            Fault::WrongIssuer => matches!(error, ClaimsVerificationError::InvalidIssuer(_)),
            Fault::Expired => matches!(error, ClaimsVerificationError::Expired(_)),
            Fault::WrongNonce => matches!(error, ClaimsVerificationError::InvalidNonce(_)),
            Fault::None => unreachable!("not among the faults"),
        };
        assert!(right_reason, "{fault:?} refused as {error:?}");
    }

    provider.misbehave(Fault::None);
    let (tokens, nonce) = sign_in(&provider, &client, &http).await;
    verify(&client, &tokens, &nonce).expect("mended: a valid ID token");
}

#[tokio::test]
async fn a_code_is_exchanged_only_once() {
    let provider = Provider::start(CLIENT_ID, CLIENT_SECRET).await;
    let http = http_client();
    let client = relying_party(&provider, &http).await;
    let started = begin(&client);
    let code = approved_code(&provider, &started).await;
    let verifier = started.verifier.secret().clone();

    exchange(&client, &http, code.clone(), started.verifier).await.expect("first exchange");
    let again = exchange(&client, &http, code, PkceCodeVerifier::new(verifier)).await;
    assert_server_error(again, CoreErrorResponseType::InvalidGrant);
}

#[tokio::test]
async fn a_wrong_code_verifier_is_invalid_grant() {
    let provider = Provider::start(CLIENT_ID, CLIENT_SECRET).await;
    let http = http_client();
    let client = relying_party(&provider, &http).await;
    let started = begin(&client);
    let code = approved_code(&provider, &started).await;
    let (_, another_verifier) = PkceCodeChallenge::new_random_sha256();

    let result = exchange(&client, &http, code, another_verifier).await;
    assert_server_error(result, CoreErrorResponseType::InvalidGrant);
}

#[tokio::test]
async fn the_token_request_must_name_the_authorization_requests_redirect_uri() {
    let provider = Provider::start(CLIENT_ID, CLIENT_SECRET).await;
    let http = http_client();
    let metadata = discover(&provider, &http).await.expect("discovery");
    let client = relying_party_with(metadata.clone(), CLIENT_SECRET, CALLBACK);
    let elsewhere = relying_party_with(metadata, CLIENT_SECRET, "http://127.0.0.1:9/elsewhere");
    let started = begin(&client);
    let code = approved_code(&provider, &started).await;

    let result = exchange(&elsewhere, &http, code, started.verifier).await;
    assert_server_error(result, CoreErrorResponseType::InvalidGrant);
}

#[tokio::test]
async fn token_errors_are_json_and_not_cached() {
    let provider = Provider::start(CLIENT_ID, CLIENT_SECRET).await;
    let response = http_client()
        .post(format!("{}/token", provider.issuer()))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", "no-such-code"),
            ("redirect_uri", CALLBACK),
            ("code_verifier", "a".repeat(43).as_str()),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ])
        .send()
        .await
        .expect("POST /token");
    assert_eq!(response.status(), reqwest::StatusCode::BAD_REQUEST);
    let cache = response.headers().get(reqwest::header::CACHE_CONTROL).cloned();
    assert_eq!(cache.as_ref().and_then(|value| value.to_str().ok()), Some("no-store"));
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["error"], "invalid_grant", "{body}");
}

#[tokio::test]
async fn after_key_rotation_only_a_fresh_key_set_verifies() {
    let provider = Provider::start(CLIENT_ID, CLIENT_SECRET).await;
    let http = http_client();
    let cached = relying_party(&provider, &http).await;
    let old_kid = provider.current_kid();

    provider.rotate_keys().await;
    assert_ne!(provider.current_kid(), old_kid, "a new kid");
    let (tokens, nonce) = sign_in(&provider, &cached, &http).await;
    let error = verify(&cached, &tokens, &nonce).expect_err("the old key set lacks the new key");
    assert!(
        matches!(
            error,
            ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey
            )
        ),
        "{error:?}"
    );

    let fresh = relying_party(&provider, &http).await;
    assert_eq!(provider.jwks_requests(), 2, "fetched the key set again");
    verify(&fresh, &tokens, &nonce).expect("the fresh key set verifies");
}

#[tokio::test]
async fn a_stopped_provider_refuses_and_comes_back_on_the_same_issuer() {
    let mut provider = Provider::start(CLIENT_ID, CLIENT_SECRET).await;
    let http = http_client();
    let client = relying_party(&provider, &http).await;
    let issuer = provider.issuer();

    provider.stop().await;
    let address = issuer.trim_start_matches("http://");
    let refused = tokio::net::TcpStream::connect(address).await;
    assert!(refused.is_err(), "the port refuses connections");
    let down = discover(&provider, &http).await;
    assert!(matches!(down, Err(DiscoveryError::Request(_))), "{down:?}");

    provider.start_again().await;
    assert_eq!(provider.issuer(), issuer);
    let metadata = discover(&provider, &http).await.expect("discovery once back");
    assert_eq!(metadata.issuer().as_str(), issuer);
    let (tokens, nonce) = sign_in(&provider, &client, &http).await;
    verify(&client, &tokens, &nonce).expect("the same keys as before the stop");
}

#[tokio::test]
async fn deny_sends_access_denied_back_with_the_state() {
    let provider = Provider::start(CLIENT_ID, CLIENT_SECRET).await;
    let http = http_client();
    let client = relying_party(&provider, &http).await;
    let started = begin(&client);

    let location = provider.deny(started.url.as_str()).await;
    let parameters = callback_parameters(&location);
    assert_eq!(parameters.get("error").map(String::as_str), Some("access_denied"));
    assert!(parameters.contains_key("error_description"), "{location}");
    assert_eq!(parameters.get("state"), Some(started.state.secret()));
    assert!(!parameters.contains_key("code"), "{location}");
}

#[tokio::test]
async fn authorize_refuses_unknown_clients_foreign_redirects_and_missing_pkce() {
    let provider = Provider::start(CLIENT_ID, CLIENT_SECRET).await;
    let http = http_client();
    let authorize = |pairs: &[(&str, &str)]| {
        let mut url = Url::parse(&format!("{}/authorize", provider.issuer())).expect("a URL");
        url.query_pairs_mut().extend_pairs(pairs);
        url
    };
    let valid = [
        ("response_type", "code"),
        ("client_id", CLIENT_ID),
        ("redirect_uri", CALLBACK),
        ("scope", "openid email"),
        ("state", "s t&a=te"),
        ("nonce", "n-1"),
        ("code_challenge", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGjSxXWbuA"),
        ("code_challenge_method", "S256"),
    ];
    let with = |name: &str, value: Option<&'static str>| {
        let mut pairs: Vec<(&str, &str)> =
            valid.iter().copied().filter(|(key, _)| *key != name).collect();
        if let Some(value) = value {
            pairs.push((name, value));
        }
        authorize(&pairs)
    };

    let ok = http.get(authorize(&valid)).send().await.expect("authorize");
    assert_eq!(ok.status(), reqwest::StatusCode::OK);

    for page in [
        with("client_id", Some("someone-else")),
        with("redirect_uri", Some("https://evil.example/callback")),
        with("redirect_uri", None),
    ] {
        let response = http.get(page.clone()).send().await.expect("authorize");
        assert_eq!(response.status(), reqwest::StatusCode::BAD_REQUEST, "{page}");
        assert!(response.headers().get(reqwest::header::LOCATION).is_none(), "{page}");
    }

    for (url, error) in [
        (with("code_challenge", None), "invalid_request"),
        (with("code_challenge_method", Some("plain")), "invalid_request"),
        (with("code_challenge_method", None), "invalid_request"),
        (with("scope", Some("email")), "invalid_scope"),
        (with("response_type", Some("token")), "unsupported_response_type"),
    ] {
        let response = http.get(url.clone()).send().await.expect("authorize");
        assert_eq!(response.status(), reqwest::StatusCode::SEE_OTHER, "{url}");
        let location = response.headers()[reqwest::header::LOCATION].to_str().expect("ASCII");
        let parameters = callback_parameters(location);
        assert_eq!(parameters.get("error").map(String::as_str), Some(error), "{url}");
        assert_eq!(parameters.get("state").map(String::as_str), Some("s t&a=te"), "{url}");
    }
}
