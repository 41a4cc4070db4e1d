//! Administration from the page: an administrator opens the accounts list and deactivates
//! someone, whose open socket closes at once.

use super::chat::DESKTOP;
use super::driver;
use crate::admin::administrator;
use crate::support::spawn_app;

#[tokio::test]
async fn an_administrator_deactivates_someone_from_the_accounts_list() {
    let Some(mut driver) = driver().await else { return };
    let app = spawn_app().await;
    let alice = administrator(&app, "alice").await;
    let bob = app.register_displayed("bob", "Bob").await;
    let mut bob_ws = app.connect(&bob).await;
    let page = driver.browser(DESKTOP.0, DESKTOP.1).await;
    page.sign_in(&app, &alice).await;

    page.click("[data-testid=administration]").await;
    let bob_row = "document.querySelector('[data-testid=admin-users] li[data-username=bob]')";
    page.until("bob listed", bob_row).await;
    assert!(
        page.text("[data-testid=admin-users] li[data-username=alice]")
            .await
            .contains("Administrator"),
        "alice is shown as an administrator"
    );
    page.screenshot("desktop-administration").await;
    // The page asks before deactivating; the test answers yes.
    page.client
        .execute("window.confirm = () => true; return null;", vec![])
        .await
        .expect("script runs");
    page.click("[data-testid=admin-users] button[aria-label='Deactivate bob']").await;
    page.until("bob shown deactivated", &format!("{bob_row}?.dataset.status === 'deactivated'"))
        .await;
    assert_eq!(bob_ws.expect_close().await, Some(4001), "bob's socket closes at once");
    page.screenshot("desktop-administration-deactivated").await;
    page.close().await;
}
