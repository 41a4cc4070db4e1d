//! Signing in with an identity provider in the web client, against the test provider
//! (support/oidc.rs) clicked through in the browser: a first sign-in finishes the account
//! on "Finish creating your account" (a taken username refused beside its field, the
//! finished sign-up gone afterwards) and the next goes straight into the chat; a refused
//! sign-in says why and creates nothing; a password account links and unlinks a provider
//! from its profile; and the password form goes when the server turns password login off.

use confab::config::OidcProvider;
use fantoccini::key::Key;
use serde_json::{Value, json};

use super::chat::{DESKTOP, PHONE};
use super::{Browser, driver};
use crate::support::oidc::{Fault, Identity, Provider};
use crate::support::{TestApp, spawn_app_with};

const CLIENT_ID: &str = "confab-web";
const CLIENT_SECRET: &str = "a-secret-only-tests-know";
/// What the server calls the provider, and so what its button says.
const LABEL: &str = "Test IdP";

/// A test provider signing in as Ada, and a server offering it (as shipped otherwise but
/// for the limits, which `configure` may change further).
async fn provider_and_app(
    configure: impl FnOnce(&mut confab::config::Settings),
) -> (Provider, TestApp) {
    let provider = Provider::start(CLIENT_ID, CLIENT_SECRET).await;
    provider.sign_in_as(
        Identity::new("ada-1").email("ada@example.com", true).name("Ada Lovelace").username("ada"),
    );
    let issuer = provider.issuer();
    let app = spawn_app_with(|settings| {
        settings.oidc_providers =
            vec![OidcProvider::new("test", LABEL, &issuer, CLIENT_ID, CLIENT_SECRET)];
        configure(settings);
    })
    .await;
    (provider, app)
}

impl Browser {
    /// Clicks "Sign in with Test IdP" and answers the provider's page with `answer`
    /// (`approve` or `deny`), which sends the browser back to Confab.
    async fn sign_in_with_provider(&self, answer: &str) {
        self.click_button(&format!("Sign in with {LABEL}")).await;
        self.click(&format!("#{answer}")).await;
    }

    /// Replaces what the field `css` holds with `text`, typed.
    async fn replace_text(&self, css: &str, text: &str) {
        let select_all = format!("{}a{}", char::from(Key::Control), char::from(Key::Null));
        self.type_into(css, &format!("{select_all}{text}")).await;
    }

    /// The status of `GET /api/v1/auth/oidc/signup` asked by the page, with its cookies.
    async fn pending_signup_status(&self) -> Value {
        let script = "const done = arguments[arguments.length - 1]; \
                      fetch('/api/v1/auth/oidc/signup').then(r => done(r.status), () => done(0));";
        self.client.execute_async(script, vec![]).await.expect("script runs")
    }

    /// Opens the profile dialog and waits for its sign-in methods.
    async fn open_sign_in_methods(&self) {
        self.click(".me-name").await;
        self.until(
            "the sign-in methods shown",
            "(() => { const s = document.querySelector('dialog .sign-in-methods'); \
             return !!s && !s.hidden && !!s.querySelector('li'); })()",
        )
        .await;
    }

    /// The sign-in methods the profile dialog lists, each as its text.
    async fn listed_methods(&self) -> Value {
        self.client
            .execute(
                "return [...document.querySelectorAll('[data-testid=sign-in-methods] li')]\
                 .map(li => li.querySelector('.grow').textContent);",
                vec![],
            )
            .await
            .expect("script runs")
    }
}

#[tokio::test]
async fn a_first_sign_in_finishes_the_account_and_the_next_goes_straight_into_the_chat() {
    let Some(mut driver) = driver().await else { return };
    let (_provider, app) = provider_and_app(|_| {}).await;
    let page = driver.browser(DESKTOP.0, DESKTOP.1).await;
    page.open(&app).await;
    // Password sign-in stays as it was beside the provider's button.
    page.find("#auth-password").await;
    page.screenshot("sso-sign-in").await;

    page.click_button(&format!("Sign in with {LABEL}")).await;
    page.find("#approve").await;
    page.screenshot("sso-provider-page").await;
    page.click("#approve").await;

    // Back on Confab: the account is proposed from the identity's claims.
    page.find("#sso-username").await;
    page.until(
        "the proposed username and display name",
        "document.querySelector('#sso-username').value === 'ada' \
         && document.querySelector('#sso-display_name').value === 'Ada Lovelace'",
    )
    .await;
    let identity = page.text("[data-testid=sso-identity]").await;
    assert!(identity.contains(LABEL) && identity.contains("ada@example.com"), "{identity}");
    // The address no longer says `?sso=signup`, so a reload does not ask again.
    assert_eq!(page.client.execute("return location.search;", vec![]).await.expect("runs"), "");
    page.screenshot("sso-finish-account").await;

    // A username someone has is refused beside the field, as registering does.
    app.register("bob").await;
    page.replace_text("#sso-username", "bob").await;
    page.click_button("Create account").await;
    page.until(
        "the username refused",
        "document.querySelector('#sso-username-error').textContent.length > 0",
    )
    .await;
    page.replace_text("#sso-username", "ada").await;
    page.click_button("Create account").await;
    page.find(".sidebar .connection[data-state=connected]").await;
    page.until(
        "signed in as Ada",
        "document.querySelector('.me-name')?.textContent === 'Ada Lovelace'",
    )
    .await;

    // Her only way in is the provider: unlinking it is refused, with the server's reason.
    page.open_sign_in_methods().await;
    assert_eq!(page.listed_methods().await, json!([format!("{LABEL}ada@example.com")]));
    page.click(&format!("button[aria-label='Unlink {LABEL}']")).await;
    page.until(
        "the refusal shown",
        "(() => { const s = document.querySelector('[data-testid=sso-status]'); \
         return s.classList.contains('form-error') && s.textContent.length > 0; })()",
    )
    .await;
    assert_eq!(page.listed_methods().await, json!([format!("{LABEL}ada@example.com")]));
    page.screenshot("sso-unlink-refused").await;
    page.click_button("Cancel").await;

    // Signed out and in again: straight into the chat, no sign-up form.
    page.click("button[aria-label='Sign out']").await;
    page.find(".auth-card").await;
    // The sign-up is finished: coming back to it says it is gone.
    page.client.goto(&format!("{}/?sso=signup", app.origin)).await.expect("page opens");
    page.until(
        "the sign-up gone",
        "document.querySelector('[data-testid=sso-notice]')?.textContent.startsWith('Your sign-up expired')",
    )
    .await;
    page.sign_in_with_provider("approve").await;
    page.find(".sidebar .connection[data-state=connected]").await;
    page.until(
        "signed in as Ada again",
        "document.querySelector('.me-name')?.textContent === 'Ada Lovelace' \
         && !document.querySelector('#sso-username') && location.search === ''",
    )
    .await;
    page.close().await;
}

#[tokio::test]
async fn a_refused_sign_in_says_why_and_creates_nothing() {
    let Some(mut driver) = driver().await else { return };
    let (provider, app) = provider_and_app(|_| {}).await;
    let page = driver.browser(DESKTOP.0, DESKTOP.1).await;

    // The provider's ID token answers another sign-in (its nonce is not this one's).
    provider.misbehave(Fault::WrongNonce);
    page.open(&app).await;
    page.sign_in_with_provider("approve").await;
    page.until(
        "the token refusal shown",
        "document.querySelector('[data-testid=sso-notice]')?.textContent.startsWith(\"The identity provider’s answer could not be verified\")",
    )
    .await;
    assert_eq!(page.client.execute("return location.search;", vec![]).await.expect("runs"), "");
    assert_eq!(page.pending_signup_status().await, json!(404));
    page.screenshot("sso-refused").await;

    // Declined at the provider.
    provider.misbehave(Fault::None);
    page.sign_in_with_provider("deny").await;
    page.until(
        "the denial shown",
        "document.querySelector('[data-testid=sso-notice]')?.textContent.startsWith('Signing in was cancelled')",
    )
    .await;
    assert_eq!(page.pending_signup_status().await, json!(404));

    // A reload forgets it; and no account took the proposed username.
    page.client.refresh().await.expect("reload");
    page.find("#auth-username").await;
    assert_eq!(page.text("[data-testid=sso-notice]").await, "");
    app.register("ada").await;

    // A code this client does not know yet still says something.
    page.client
        .goto(&format!("{}/?sso_error=sso_from_a_newer_server", app.origin))
        .await
        .expect("opens");
    page.until(
        "the generic sentence",
        "document.querySelector('[data-testid=sso-notice]')?.textContent.startsWith('Signing in with the identity provider did not work')",
    )
    .await;
    page.close().await;
}

#[tokio::test]
async fn a_password_account_links_and_unlinks_a_provider_from_its_profile() {
    let Some(mut driver) = driver().await else { return };
    let (_provider, app) = provider_and_app(|_| {}).await;
    let ada = app.register_displayed("ada_pw", "Ada").await;
    let page = driver.browser(DESKTOP.0, DESKTOP.1).await;
    page.sign_in(&app, &ada).await;

    page.open_sign_in_methods().await;
    assert_eq!(page.listed_methods().await, json!(["PasswordYour username and password"]));
    page.click_button(&format!("Link {LABEL}")).await;
    page.click("#approve").await;

    // Back in the chat, the profile opens on what changed.
    page.until(
        "linked, said in the profile",
        &format!(
            "document.querySelector('dialog [data-testid=sso-status]')?.textContent === '{LABEL} is now linked: you can sign in with it.'"
        ),
    )
    .await;
    page.until(
        "the provider listed",
        &format!(
            "[...document.querySelectorAll('[data-testid=sign-in-methods] li')].some(li => li.textContent.includes('{LABEL}'))"
        ),
    )
    .await;
    assert!(page.eval("!document.querySelector('.sso-links button')").await == json!(true));
    page.screenshot("sso-linked").await;

    page.click(&format!("button[aria-label='Unlink {LABEL}']")).await;
    page.until(
        "unlinked",
        &format!(
            "document.querySelector('[data-testid=sso-status]').textContent === '{LABEL} is no longer linked.' \
             && document.querySelectorAll('[data-testid=sign-in-methods] li').length === 1"
        ),
    )
    .await;
    page.find(".sso-links button[data-provider=test]").await;
    page.close().await;
}

#[tokio::test]
async fn without_password_login_only_the_provider_is_offered_also_on_a_phone() {
    let Some(mut driver) = driver().await else { return };
    let (_provider, app) = provider_and_app(|settings| settings.password_login = false).await;
    let page = driver.browser(PHONE.0, PHONE.1).await;
    page.open(&app).await;
    page.find(".sso-button").await;
    page.until(
        "no password form, no tabs",
        "!document.querySelector('#auth-password') && !document.querySelector('.tabs') \
         && document.activeElement === document.querySelector('.sso-button')",
    )
    .await;
    page.screenshot("sso-phone-provider-only").await;
    page.close().await;
}
