//! Signing in with an identity provider, against a real OpenID Connect provider on loopback
//! (`support::oidc`): discovery, the authorization code flow with PKCE, state and nonce,
//! signed ID tokens, and every refusal the server must make.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::oidc::{Fault, Identity, Provider};
use crate::support::{
    TestApp, described, each_store, eventually, spawn_app_with, spawn_cluster_with,
};
use confab::config::{OidcProvider, Settings};

const CLIENT_ID: &str = "confab";
const CLIENT_SECRET: &str = "confab-secret";

/// The provider as Confab is configured with it.
fn configure(provider: &Provider) -> impl Fn(&mut Settings) + Clone + Send + 'static {
    let config =
        OidcProvider::new("test", "Test IdP", &provider.issuer(), CLIENT_ID, CLIENT_SECRET);
    move |settings: &mut Settings| settings.oidc_providers = vec![config.clone()]
}

async fn provider_and_app() -> (Provider, TestApp) {
    let provider = Provider::start(CLIENT_ID, CLIENT_SECRET).await;
    let app = spawn_app_with(configure(&provider)).await;
    (provider, app)
}

/// A browser: its own cookies, and redirects left for the test to follow.
struct Browser {
    http: reqwest::Client,
}

/// Where a callback sent the browser.
#[derive(Debug, PartialEq, Eq)]
enum Landed {
    SignedIn,
    Signup,
    Linked,
    Refused(String),
}

impl Browser {
    fn new() -> Self {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("a client");
        Self { http }
    }

    async fn call(
        &self,
        app: &TestApp,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method, app.url(path));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer = described::send(request).await;
        (answer.status, answer.json())
    }

    async fn get(&self, app: &TestApp, path: &str) -> (StatusCode, Value) {
        self.call(app, reqwest::Method::GET, path, None).await
    }

    async fn post(&self, app: &TestApp, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(app, reqwest::Method::POST, path, Some(body)).await
    }

    /// Starts a flow; the provider's authorization URL.
    async fn start(&self, app: &TestApp, intent: &str) -> String {
        let (status, body) =
            self.post(app, "/auth/oidc/test/start", json!({ "intent": intent })).await;
        assert_eq!(status, StatusCode::OK, "start: {body}");
        body["authorization_url"].as_str().expect("an authorization URL").to_owned()
    }

    /// Follows a callback URL (on `app`, whatever host it names) and reads where it lands.
    async fn callback(&self, app: &TestApp, callback: &str) -> Landed {
        let path = callback.split_once("/api/v1").map(|(_, path)| path).expect("a callback URL");
        let answer = described::send(self.http.get(app.url(path))).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "a callback always redirects");
        let location = answer.headers[reqwest::header::LOCATION].to_str().expect("ASCII");
        match location {
            "/" => Landed::SignedIn,
            "/?sso=signup" => Landed::Signup,
            "/?sso=linked" => Landed::Linked,
            other => Landed::Refused(
                other.strip_prefix("/?sso_error=").unwrap_or_else(|| panic!("{other}")).to_owned(),
            ),
        }
    }

    /// Signs in with the provider as whoever it signs in as now, to where it lands.
    async fn sign_in(&self, app: &TestApp, provider: &Provider) -> Landed {
        let authorization = self.start(app, "sign_in").await;
        let callback = provider.approve(&authorization).await;
        self.callback(app, &callback).await
    }

    /// Finishes a pending sign-up with the proposed names; the new user.
    async fn finish_signup(&self, app: &TestApp) -> Value {
        let (status, proposal) = self.get(app, "/auth/oidc/signup").await;
        assert_eq!(status, StatusCode::OK, "{proposal}");
        let body =
            json!({ "username": proposal["username"], "display_name": proposal["display_name"] });
        let (status, body) = self.post(app, "/auth/oidc/signup", body).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["user"].clone()
    }

    async fn me(&self, app: &TestApp) -> Option<Value> {
        let (status, me) = self.get(app, "/me").await;
        (status == StatusCode::OK).then_some(me)
    }
}

fn ada() -> Identity {
    Identity::new("ada-subject").email("ada@example.com", true).name("Ada Lovelace").username("ada")
}

#[each_store]
async fn a_first_sign_in_makes_the_account_and_the_next_signs_into_it() {
    let (provider, app) = provider_and_app().await;
    provider.sign_in_as(ada());

    let (status, methods) = Browser::new().get(&app, "/auth/methods").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        methods,
        json!({"password_login": true, "password_signup": true,
               "providers": [{"id": "test", "label": "Test IdP"}]})
    );

    let browser = Browser::new();
    assert_eq!(browser.sign_in(&app, &provider).await, Landed::Signup);
    let sent = provider.last_authorization().expect("an authorization request");
    assert_eq!(sent.code_challenge_method.as_deref(), Some("S256"), "PKCE");
    assert!(sent.code_challenge.is_some(), "PKCE: {sent:?}");
    assert!(sent.nonce.as_ref().is_some_and(|n| n.len() >= 16), "a nonce: {sent:?}");
    assert!(sent.state.as_ref().is_some_and(|s| s.len() >= 32), "a state: {sent:?}");
    assert_eq!(sent.scopes(), ["openid", "email", "profile"]);
    assert!(browser.me(&app).await.is_none(), "not signed in before the sign-up is finished");

    let (status, proposal) = browser.get(&app, "/auth/oidc/signup").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        proposal,
        json!({"provider": {"id": "test", "label": "Test IdP"}, "username": "ada",
               "display_name": "Ada Lovelace", "email": "ada@example.com"})
    );
    let body = json!({"username": "countess", "display_name": "Ada, Countess of Lovelace"});
    let (status, created) = browser.post(&app, "/auth/oidc/signup", body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["user"]["username"], "countess", "the person's choice, not the proposal");
    let me = browser.me(&app).await.expect("signed in by the cookie");
    assert_eq!(me["display_name"], "Ada, Countess of Lovelace");
    let token = created["token"].as_str().expect("a bearer token too");
    let (status, _) = app
        .http
        .get(app.url("/me"))
        .bearer_auth(token)
        .send()
        .await
        .map(|r| (r.status(), ()))
        .expect("me by bearer");
    assert_eq!(status, StatusCode::OK);

    // The sign-up is spent.
    let (status, _) = browser.get(&app, "/auth/oidc/signup").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Again, in another browser, and with another email: the same account.
    provider.sign_in_as(ada().email("ada@lovelace.example", true));
    let other = Browser::new();
    assert_eq!(other.sign_in(&app, &provider).await, Landed::SignedIn);
    let again = other.me(&app).await.expect("signed in");
    assert_eq!(again["id"], me["id"]);

    // Logging out ends that session like any other.
    let (status, _) = other.post(&app, "/auth/logout", json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(other.me(&app).await.is_none());
    assert!(browser.me(&app).await.is_some(), "the other session lives on");

    // Someone else with the same verified email is someone else: never attached by email.
    provider.sign_in_as(Identity::new("impostor").email("ada@lovelace.example", true));
    let third = Browser::new();
    assert_eq!(third.sign_in(&app, &provider).await, Landed::Signup);
    let user = third.finish_signup(&app).await;
    assert_ne!(user["id"], me["id"]);
    assert_ne!(user["username"], "countess");
}

#[each_store]
async fn a_proposed_username_is_free_and_an_unverified_email_is_ignored() {
    let (provider, app) = provider_and_app().await;
    app.register("mallory").await;
    provider.sign_in_as(Identity::new("m-1").email("mallory@example.com", false));
    let browser = Browser::new();
    assert_eq!(browser.sign_in(&app, &provider).await, Landed::Signup);
    let (_, proposal) = browser.get(&app, "/auth/oidc/signup").await;
    assert_eq!(proposal["email"], Value::Null, "unverified: not shown");
    assert!(
        !proposal["username"].as_str().expect("a username").starts_with("mallory"),
        "unverified: not used for the name either: {proposal}"
    );
    let user = browser.finish_signup(&app).await;
    let (_, methods) = browser.get(&app, "/me/identities").await;
    assert_eq!(methods["identities"][0]["email"], Value::Null, "nor kept");
    assert_eq!(methods["password"], false);
    assert_ne!(user["username"], "mallory");

    // A verified email's local part, made free.
    provider.sign_in_as(Identity::new("m-2").email("mallory@example.com", true));
    let browser = Browser::new();
    assert_eq!(browser.sign_in(&app, &provider).await, Landed::Signup);
    let (_, proposal) = browser.get(&app, "/auth/oidc/signup").await;
    assert_eq!(proposal["username"], "mallory2", "mallory is taken");
    let (status, body) =
        browser.post(&app, "/auth/oidc/signup", json!({"username": "mallory"})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "username_taken");
    let (status, body) = browser.post(&app, "/auth/oidc/signup", json!({"username": "x"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    browser.finish_signup(&app).await;
}

#[each_store]
async fn a_signed_in_user_links_and_unlinks_a_provider() {
    let (provider, app) = provider_and_app().await;
    let browser = Browser::new();
    let body = json!({"username": "bob", "password": "password-bob"});
    let (status, registered) = browser.post(&app, "/auth/register", body).await;
    assert_eq!(status, StatusCode::CREATED);
    let bob = registered["user"]["id"].clone();

    // Linking needs a session.
    let (status, _) =
        Browser::new().post(&app, "/auth/oidc/test/start", json!({"intent": "link"})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    provider.sign_in_as(Identity::new("bob-at-idp").email("bob@example.com", true));
    let authorization = browser.start(&app, "link").await;
    let callback = provider.approve(&authorization).await;
    assert_eq!(browser.callback(&app, &callback).await, Landed::Linked);
    let (_, methods) = browser.get(&app, "/me/identities").await;
    let identities = methods["identities"].as_array().expect("identities");
    assert_eq!(identities.len(), 1, "{methods}");
    assert_eq!(identities[0]["provider"], "test");
    assert_eq!(identities[0]["label"], "Test IdP");
    assert_eq!(identities[0]["email"], "bob@example.com");
    assert_eq!(methods["password"], true);

    // The provider now signs into bob's account.
    let elsewhere = Browser::new();
    assert_eq!(elsewhere.sign_in(&app, &provider).await, Landed::SignedIn);
    assert_eq!(elsewhere.me(&app).await.expect("signed in")["id"], bob);

    // Someone else's identity cannot be linked to bob.
    provider.sign_in_as(ada());
    let ada_browser = Browser::new();
    assert_eq!(ada_browser.sign_in(&app, &provider).await, Landed::Signup);
    ada_browser.finish_signup(&app).await;
    let authorization = browser.start(&app, "link").await;
    let callback = provider.approve(&authorization).await;
    assert_eq!(
        browser.callback(&app, &callback).await,
        Landed::Refused("sso_identity_taken".into())
    );

    // Ada's identity is her only way in: it stays.
    let (_, hers) = ada_browser.get(&app, "/me/identities").await;
    let hers = hers["identities"][0]["id"].as_str().expect("an id").to_owned();
    let (status, body) = ada_browser
        .call(&app, reqwest::Method::DELETE, &format!("/me/identities/{hers}"), None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "last_sign_in_method");
    // Nor can bob unlink hers.
    let (status, _) =
        browser.call(&app, reqwest::Method::DELETE, &format!("/me/identities/{hers}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A link whose session ended before the provider answered: refused before the code is
    // used.
    let other = Browser::new();
    let (status, _) = other
        .post(&app, "/auth/login", json!({"username": "bob", "password": "password-bob"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let authorization = other.start(&app, "link").await;
    let (status, _) = other.post(&app, "/auth/logout", json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let callback = provider.approve(&authorization).await;
    let exchanges = provider.token_requests();
    assert_eq!(other.callback(&app, &callback).await, Landed::Refused("sso_signed_out".into()));
    assert_eq!(provider.token_requests(), exchanges, "the code was not used");

    // Bob keeps his password: he may unlink, and the provider then makes a new account.
    let id = identities[0]["id"].as_str().expect("an id");
    let (status, _) =
        browser.call(&app, reqwest::Method::DELETE, &format!("/me/identities/{id}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, methods) = browser.get(&app, "/me/identities").await;
    assert_eq!(methods["identities"], json!([]));
    provider.sign_in_as(Identity::new("bob-at-idp"));
    assert_eq!(Browser::new().sign_in(&app, &provider).await, Landed::Signup);
}

#[each_store]
async fn every_bad_answer_from_the_provider_is_refused_and_makes_nothing() {
    let (provider, app) = provider_and_app().await;
    provider.sign_in_as(ada());
    for (fault, name) in [
        (Fault::BadSignature, "bad signature"),
        (Fault::WrongAudience, "wrong audience"),
        (Fault::WrongIssuer, "wrong issuer"),
        (Fault::Expired, "expired token"),
        (Fault::WrongNonce, "wrong nonce"),
    ] {
        provider.misbehave(fault);
        let browser = Browser::new();
        assert_eq!(
            browser.sign_in(&app, &provider).await,
            Landed::Refused("sso_token".into()),
            "{name}"
        );
        assert!(browser.me(&app).await.is_none(), "{name}: not signed in");
        let (status, _) = browser.get(&app, "/auth/oidc/signup").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{name}: no sign-up pending");
    }
    provider.misbehave(Fault::None);

    // Denied at the provider.
    let browser = Browser::new();
    let authorization = browser.start(&app, "sign_in").await;
    let callback = provider.deny(&authorization).await;
    assert_eq!(browser.callback(&app, &callback).await, Landed::Refused("sso_denied".into()));

    // A forged state, and none at all.
    let forged =
        format!("{}/api/v1/auth/oidc/test/callback?code=x&state={}", app.origin, "A".repeat(43));
    assert_eq!(browser.callback(&app, &forged).await, Landed::Refused("sso_state".into()));
    let bare = format!("{}/api/v1/auth/oidc/test/callback", app.origin);
    assert_eq!(browser.callback(&app, &bare).await, Landed::Refused("sso_state".into()));

    // A flow started in one browser and finished in another: a login CSRF.
    let authorization = browser.start(&app, "sign_in").await;
    let callback = provider.approve(&authorization).await;
    let attacker = Browser::new();
    assert_eq!(attacker.callback(&app, &callback).await, Landed::Refused("sso_state".into()));
    // The flow is spent by the attempt: not even its own browser finishes it now.
    assert_eq!(browser.callback(&app, &callback).await, Landed::Refused("sso_state".into()));

    // A flow finished, then replayed.
    let authorization = browser.start(&app, "sign_in").await;
    let callback = provider.approve(&authorization).await;
    assert_eq!(browser.callback(&app, &callback).await, Landed::Signup);
    assert_eq!(browser.callback(&app, &callback).await, Landed::Refused("sso_state".into()));

    // Nothing above made an account.
    let stranger = app.register("stranger").await;
    let (_, found) = app.get(&stranger, "/users?q=ada").await;
    assert_eq!(found["users"], json!([]), "no account for ada");

    // The unknown provider, and a start from another site.
    let (status, _) =
        Browser::new().post(&app, "/auth/oidc/nope/start", json!({"intent": "sign_in"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let response = Browser::new()
        .http
        .post(app.url("/auth/oidc/test/start"))
        .header(reqwest::header::ORIGIN, "https://evil.example")
        .json(&json!({"intent": "sign_in"}))
        .send()
        .await
        .expect("start");
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

#[each_store]
async fn an_expired_flow_is_refused() {
    let (provider, app) = provider_and_app().await;
    provider.sign_in_as(ada());
    let browser = Browser::new();
    let authorization = browser.start(&app, "sign_in").await;
    let callback = provider.approve(&authorization).await;
    crate::support::store::execute(
        app.database(),
        app.data_path(),
        "UPDATE sign_in_flows SET expires_at = 0",
    )
    .await;
    assert_eq!(browser.callback(&app, &callback).await, Landed::Refused("sso_expired".into()));
    assert_eq!(provider.token_requests(), 0, "refused before the code was used");
}

#[tokio::test]
async fn a_provider_that_is_down_is_a_clear_refusal_and_its_return_is_noticed() {
    // Down before Confab first looks at it.
    let mut provider = Provider::start(CLIENT_ID, CLIENT_SECRET).await;
    provider.sign_in_as(ada());
    provider.stop().await;
    let app = spawn_app_with(configure(&provider)).await;
    let browser = Browser::new();
    let (status, body) =
        browser.post(&app, "/auth/oidc/test/start", json!({"intent": "sign_in"})).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(body["error"]["code"], "sso_unavailable");

    // Back: Confab asks again after a short pause, not at every request meanwhile.
    provider.start_again().await;
    let start = json!({"intent": "sign_in"});
    let authorization = eventually("the provider is used again", || async {
        let (status, body) = browser.post(&app, "/auth/oidc/test/start", start.clone()).await;
        (status == StatusCode::OK).then(|| body["authorization_url"].as_str().map(str::to_owned))?
    })
    .await;
    let callback = provider.approve(&authorization).await;
    // Down between the two ends of a flow.
    provider.stop().await;
    assert_eq!(browser.callback(&app, &callback).await, Landed::Refused("sso_unavailable".into()));
    provider.start_again().await;
    assert_eq!(browser.sign_in(&app, &provider).await, Landed::Signup);
}

#[tokio::test]
async fn a_provider_that_rotates_its_keys_is_followed() {
    let (provider, app) = provider_and_app().await;
    provider.sign_in_as(ada());
    let browser = Browser::new();
    assert_eq!(browser.sign_in(&app, &provider).await, Landed::Signup);
    browser.finish_signup(&app).await;
    let fetched = provider.jwks_requests();

    provider.rotate_keys().await;
    let again = Browser::new();
    assert_eq!(again.sign_in(&app, &provider).await, Landed::SignedIn, "the new key was fetched");
    assert!(provider.jwks_requests() > fetched, "the keys were fetched again");
}

#[tokio::test]
async fn with_password_login_off_only_the_provider_signs_in() {
    let provider = Provider::start(CLIENT_ID, CLIENT_SECRET).await;
    let with_provider = configure(&provider);
    let app = spawn_app_with(move |settings| {
        with_provider(settings);
        settings.password_login = false;
        settings.password_signup = false;
    })
    .await;
    let browser = Browser::new();
    let (_, methods) = browser.get(&app, "/auth/methods").await;
    assert_eq!(methods["password_login"], false);
    assert_eq!(methods["password_signup"], false);
    let body = json!({"username": "carol", "password": "password-carol"});
    let (status, refused) = browser.post(&app, "/auth/register", body.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(refused["error"]["code"], "password_signup_disabled");
    let (status, refused) = browser.post(&app, "/auth/login", body).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(refused["error"]["code"], "password_login_disabled");

    provider.sign_in_as(ada());
    assert_eq!(browser.sign_in(&app, &provider).await, Landed::Signup);
    browser.finish_signup(&app).await;
    assert!(browser.me(&app).await.is_some());
}

#[tokio::test]
async fn a_flow_started_on_one_node_is_finished_on_another() {
    let provider = Provider::start(CLIENT_ID, CLIENT_SECRET).await;
    let with_provider = configure(&provider);
    // One public origin for both nodes, as behind a load balancer.
    let Some(cluster) = spawn_cluster_with(2, move |settings| {
        with_provider(settings);
        settings.public_origin = "http://localhost:9".to_owned();
    })
    .await
    else {
        return;
    };
    let (first, second) = (&cluster.nodes[0], &cluster.nodes[1]);
    provider.sign_in_as(ada());
    let browser = Browser::new();
    let authorization = browser.start(first, "sign_in").await;
    let callback = provider.approve(&authorization).await;
    // Cookies are by host, not port: the browser carries the flow's cookie to the other node.
    assert_eq!(browser.callback(second, &callback).await, Landed::Signup);
    let user = browser.finish_signup(second).await;
    assert_eq!(browser.sign_in(first, &provider).await, Landed::SignedIn);
    assert_eq!(browser.me(first).await.expect("signed in")["id"], user["id"]);
}

#[each_store]
async fn an_identity_of_a_provider_no_longer_configured_is_no_way_in() {
    let (provider, app) = provider_and_app().await;
    provider.sign_in_as(ada());
    let browser = Browser::new();
    assert_eq!(browser.sign_in(&app, &provider).await, Landed::Signup);
    browser.finish_signup(&app).await;
    provider.sign_in_as(Identity::new("ada-second"));
    let authorization = browser.start(&app, "link").await;
    let callback = provider.approve(&authorization).await;
    assert_eq!(browser.callback(&app, &callback).await, Landed::Linked);

    // The operator renames the provider the first identity came through.
    let sql = "UPDATE identities SET provider = 'gone' WHERE subject = 'ada-subject'";
    crate::support::store::execute(app.database(), app.data_path(), sql).await;
    let (_, methods) = browser.get(&app, "/me/identities").await;
    let identities = methods["identities"].as_array().expect("identities");
    assert_eq!(identities.len(), 2);
    assert_eq!(identities[0]["provider"], Value::Null, "no longer configured: {methods}");
    assert_eq!(identities[0]["label"], provider.issuer(), "shown by its issuer");
    let second = identities[1]["id"].as_str().expect("an id");
    let (status, body) = browser
        .call(&app, reqwest::Method::DELETE, &format!("/me/identities/{second}"), None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "the other identity cannot sign in: {body}");
    let first = identities[0]["id"].as_str().expect("an id");
    let (status, _) =
        browser.call(&app, reqwest::Method::DELETE, &format!("/me/identities/{first}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "while a working one stays");
}

#[tokio::test]
async fn over_https_the_flow_cookies_are_host_only() {
    let provider = Provider::start(CLIENT_ID, CLIENT_SECRET).await;
    let with_provider = configure(&provider);
    let app = spawn_app_with(move |settings| {
        with_provider(settings);
        settings.secure_cookies = true;
    })
    .await;
    let response = Browser::new()
        .http
        .post(app.url("/auth/oidc/test/start"))
        .json(&json!({"intent": "sign_in"}))
        .send()
        .await
        .expect("start");
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = response.headers()[reqwest::header::SET_COOKIE].to_str().expect("ASCII");
    assert!(cookie.starts_with("__Host-confab_sso="), "{cookie}");
    assert!(cookie.contains("; Path=/;") && cookie.ends_with("; Secure"), "{cookie}");
}
