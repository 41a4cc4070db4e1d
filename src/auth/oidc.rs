//! Signing in with OpenID Connect identity providers: discovery, the authorization code
//! flow's two ends (the URL the browser is sent to, and the exchange of the code it brings
//! back), and the ID token's checks. The `openidconnect` crate does the protocol and the
//! cryptography; this module keeps each provider's discovered metadata and keys, and
//! fetches them again when they are old or when a token is signed by a key they lack (the
//! provider rotated its keys).
//!
//! What a flow must remember between its two ends (state, nonce, PKCE verifier) is the
//! caller's to keep: `app::sso` stores it in the database, so any node can finish a flow
//! another node started.

use std::sync::Arc;
use std::time::{Duration, Instant};

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreClientAuthMethod, CoreJwsSigningAlgorithm,
    CoreProviderMetadata,
};
use openidconnect::{
    AuthType, AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken,
    EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl, Nonce, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, SignatureVerificationError, TokenResponse,
};

use crate::config::OidcProvider;

/// How long discovered metadata and keys are used before they are fetched again.
const METADATA_TTL: Duration = Duration::from_secs(3600);
/// The most a request to a provider may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Why a provider could not sign someone in.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("no such identity provider")]
    UnknownProvider,
    /// The provider could not be reached, or answered what is not OpenID Connect.
    #[error("the identity provider is unavailable: {0}")]
    Unavailable(String),
    /// The provider's answer failed a check: the code exchange was refused, or the ID
    /// token's signature, issuer, audience, expiry or nonce is wrong.
    #[error("the identity provider's answer was refused: {0}")]
    Refused(String),
}

/// Where to send the browser, and what the flow's other end needs.
pub struct Authorization {
    pub url: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

/// An identity the provider vouched for in a checked ID token.
#[derive(Debug, Clone)]
pub struct VerifiedIdentity {
    pub issuer: String,
    pub subject: String,
    /// Only an email the provider says is verified; any other is dropped here.
    pub email: Option<String>,
    pub name: Option<String>,
    pub preferred_username: Option<String>,
}

/// The configured providers.
pub struct Providers {
    http: openidconnect::reqwest::Client,
    providers: Vec<Provider>,
}

struct Provider {
    config: OidcProvider,
    redirect: RedirectUrl,
    /// What was last discovered, and when a fetch last failed.
    kept: std::sync::Mutex<Kept>,
    /// Held while fetching: one fetch per provider at a time, however many requests wait.
    fetching: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct Kept {
    discovered: Option<Arc<Discovered>>,
    failed_at: Option<Instant>,
}

struct Discovered {
    client: Client,
    at: Instant,
}

/// After a failed fetch, how long requests use what is kept (or are refused, if nothing
/// is) rather than ask the provider again: an outage costs it one request in this long.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(5);

/// The signature algorithms an ID token may use: public-key ones only, whatever the
/// provider's discovery lists (an HMAC would be checked with the client secret, which
/// more than the provider knows).
const ALLOWED_ALGS: [CoreJwsSigningAlgorithm; 10] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::RsaSsaPssSha384,
    CoreJwsSigningAlgorithm::RsaSsaPssSha512,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
    CoreJwsSigningAlgorithm::EcdsaP521Sha512,
    CoreJwsSigningAlgorithm::EdDsa,
];

impl Providers {
    /// The providers, each with its callback at `{public_origin}/api/v1/auth/oidc/{id}/
    /// callback`. Nothing is fetched until a provider is used.
    pub fn new(configs: &[OidcProvider], public_origin: &str) -> Result<Self, String> {
        let http = openidconnect::reqwest::ClientBuilder::new()
            // Following a redirect would let a provider's answer send Confab elsewhere.
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|e| e.to_string())?;
        let providers = configs
            .iter()
            .map(|config| {
                let callback = format!("{public_origin}/api/v1/auth/oidc/{}/callback", config.id);
                let redirect = RedirectUrl::new(callback).map_err(|e| e.to_string())?;
                Ok(Provider {
                    config: config.clone(),
                    redirect,
                    kept: Default::default(),
                    fetching: Default::default(),
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(Self { http, providers })
    }

    /// The providers, in the order configured.
    pub fn configured(&self) -> impl Iterator<Item = &OidcProvider> {
        self.providers.iter().map(|p| &p.config)
    }

    pub fn get(&self, id: &str) -> Option<&OidcProvider> {
        self.provider(id).ok().map(|p| &p.config)
    }

    fn provider(&self, id: &str) -> Result<&Provider, OidcError> {
        self.providers.iter().find(|p| p.config.id == id).ok_or(OidcError::UnknownProvider)
    }

    /// Fetches every provider's metadata once, logging those that cannot be reached, so
    /// that an operator's mistake shows at start-up rather than at someone's first
    /// sign-in.
    pub async fn warm_up(&self) {
        for provider in &self.providers {
            match self.client(provider, None).await {
                Ok(_) => tracing::info!(provider = %provider.config.id,
                    issuer = %provider.config.issuer, "identity provider discovered"),
                Err(error) => tracing::warn!(provider = %provider.config.id, %error,
                    "identity provider not reachable yet; sign-ins through it fail until it is"),
            }
        }
    }

    /// Starts a flow: the provider's authorization URL for this `state`, with a fresh
    /// nonce and PKCE challenge.
    pub async fn authorize(&self, id: &str, state: &str) -> Result<Authorization, OidcError> {
        let provider = self.provider(id)?;
        let discovered = self.client(provider, None).await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let state = state.to_owned();
        let mut request = discovered.client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            move || CsrfToken::new(state),
            Nonce::new_random,
        );
        for scope in &provider.config.scopes {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, _, nonce) = request.set_pkce_challenge(challenge).url();
        Ok(Authorization {
            url: url.to_string(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        })
    }

    /// Finishes a flow: exchanges the code (with the PKCE verifier) at the provider's
    /// token endpoint and checks the ID token against the provider's keys, issuer, this
    /// client's id, the time and the flow's nonce.
    pub async fn finish(
        &self,
        id: &str,
        code: &str,
        pkce_verifier: &str,
        nonce: &str,
    ) -> Result<VerifiedIdentity, OidcError> {
        let provider = self.provider(id)?;
        let discovered = self.client(provider, None).await?;
        let exchange = discovered
            .client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| OidcError::Unavailable(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_owned()));
        let response = exchange.request_async(&self.http).await.map_err(|error| match error {
            openidconnect::RequestTokenError::ServerResponse(answer) => {
                OidcError::Refused(format!("the token endpoint refused the code: {answer}"))
            }
            openidconnect::RequestTokenError::Request(e) => OidcError::Unavailable(e.to_string()),
            other => OidcError::Unavailable(other.to_string()),
        })?;
        let token = response
            .id_token()
            .ok_or_else(|| OidcError::Refused("the token response holds no ID token".into()))?;
        let nonce = Nonce::new(nonce.to_owned());
        let check = |client: &Client| {
            let verifier = client.id_token_verifier().set_allowed_algs(ALLOWED_ALGS);
            let claims = token.claims(&verifier, &nonce)?;
            // The verifier leaves `azp` alone: when present it must be us.
            if claims.authorized_party().is_some_and(|azp| **azp != provider.config.client_id) {
                return Err(ClaimsVerificationError::InvalidAudience(
                    "authorized party (azp) is another client".to_owned(),
                ));
            }
            Ok(identity(claims))
        };
        let verified = match check(&discovered.client) {
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            )) => {
                // Signed by a key published since we looked: the provider rotated its keys.
                // The token came from the provider's own token endpoint, so this costs one
                // fetch per real sign-in at most.
                let fresh = self.client(provider, Some(discovered.at)).await?;
                check(&fresh.client)
            }
            other => other,
        };
        verified.map_err(|e| OidcError::Refused(format!("the ID token: {e}")))
    }

    /// The provider's client from its discovered metadata: as kept, unless it is older
    /// than [`METADATA_TTL`] or is the one fetched at `stale` (a newer one is wanted). One
    /// fetch at a time per provider; after a failure, what is kept (or the failure) stands
    /// for [`RETRY_AFTER_FAILURE`].
    async fn client(
        &self,
        provider: &Provider,
        stale: Option<Instant>,
    ) -> Result<Arc<Discovered>, OidcError> {
        let usable = |kept: &Kept| -> Option<Result<Arc<Discovered>, OidcError>> {
            let discovered = kept.discovered.as_ref();
            let fresh = discovered.filter(|d| {
                d.at.elapsed() < METADATA_TTL && stale.is_none_or(|stale| d.at > stale)
            });
            if let Some(fresh) = fresh {
                return Some(Ok(fresh.clone()));
            }
            let failed_lately = kept.failed_at.is_some_and(|at| at.elapsed() < RETRY_AFTER_FAILURE);
            failed_lately.then(|| {
                discovered.cloned().ok_or_else(|| {
                    OidcError::Unavailable("its metadata could not be fetched lately".to_owned())
                })
            })
        };
        if let Some(answer) = usable(&provider.lock()) {
            return answer;
        }
        let _fetching = provider.fetching.lock().await;
        // Another request may have fetched while this one waited.
        if let Some(answer) = usable(&provider.lock()) {
            return answer;
        }
        let fetched = self.discover(&provider.config, &provider.redirect).await;
        let mut kept = provider.lock();
        match fetched {
            Ok(client) => {
                let fresh = Arc::new(Discovered { client, at: Instant::now() });
                *kept = Kept { discovered: Some(fresh.clone()), failed_at: None };
                Ok(fresh)
            }
            Err(error) => {
                kept.failed_at = Some(Instant::now());
                match &kept.discovered {
                    // Old metadata serves better than none; a rotated key needs new.
                    Some(old) if stale.is_none() => {
                        tracing::warn!(provider = %provider.config.id, %error,
                            "identity provider's metadata could not be refreshed; using the old");
                        Ok(old.clone())
                    }
                    _ => Err(error),
                }
            }
        }
    }

    async fn discover(
        &self,
        config: &OidcProvider,
        redirect: &RedirectUrl,
    ) -> Result<Client, OidcError> {
        let issuer = IssuerUrl::new(config.issuer.clone())
            .map_err(|e| OidcError::Unavailable(e.to_string()))?;
        // Checks that the metadata names this issuer, and fetches the keys.
        let metadata = CoreProviderMetadata::discover_async(issuer, &self.http)
            .await
            .map_err(|e| OidcError::Unavailable(crate::error::chain(&e)))?;
        // client_secret_basic unless the provider says it takes only client_secret_post.
        let methods = metadata.token_endpoint_auth_methods_supported();
        let post_only = methods.is_some_and(|methods| {
            !methods.contains(&CoreClientAuthMethod::ClientSecretBasic)
                && methods.contains(&CoreClientAuthMethod::ClientSecretPost)
        });
        let secret = config.client_secret.clone().map(ClientSecret::new);
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(config.client_id.clone()),
            secret,
        )
        .set_redirect_uri(redirect.clone());
        Ok(if post_only { client.set_auth_type(AuthType::RequestBody) } else { client })
    }
}

impl Provider {
    fn lock(&self) -> std::sync::MutexGuard<'_, Kept> {
        self.kept.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn identity(claims: &openidconnect::core::CoreIdTokenClaims) -> VerifiedIdentity {
    let email = match claims.email_verified() {
        Some(true) => claims.email().map(|email| email.as_str().to_owned()),
        _ => None,
    };
    VerifiedIdentity {
        issuer: claims.issuer().as_str().to_owned(),
        subject: claims.subject().as_str().to_owned(),
        email,
        name: claims.name().and_then(|name| name.get(None)).map(|name| name.as_str().to_owned()),
        preferred_username: claims.preferred_username().map(|name| name.as_str().to_owned()),
    }
}
