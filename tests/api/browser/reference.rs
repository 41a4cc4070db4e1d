//! The API reference at `/api/docs`: the page's own script draws `/api/v1/openapi.json`,
//! offline (nothing but the server's own assets), with a search box.

use serde_json::{Value, json};

use super::chat::DESKTOP;
use super::driver;
use crate::support::spawn_app;

#[tokio::test]
async fn the_reference_draws_every_endpoint_of_the_description_and_its_search_narrows_them() {
    let Some(mut driver) = driver().await else { return };
    let app = spawn_app().await;
    let url = format!("http://{}/api/v1/openapi.json", app.address);
    let description: Value =
        app.http.get(url).send().await.expect("openapi.json").json().await.expect("JSON");
    let methods = ["get", "put", "post", "patch", "delete"];
    let operations: usize = description["paths"]
        .as_object()
        .expect("paths")
        .values()
        .map(|item| methods.iter().filter(|method| item.get(**method).is_some()).count())
        .sum();
    assert!(operations > 40, "the description has the API's endpoints: {operations}");

    let page = driver.browser(DESKTOP.0, DESKTOP.1).await;
    page.client.goto(&format!("http://{}/api/docs", app.address)).await.expect("page opens");
    let drawn = "document.querySelectorAll('#operations section.operation[data-search]').length";
    page.until("every endpoint drawn", &format!("{drawn} === {operations}")).await;
    assert_eq!(page.text(".error").await, "", "the page read the description");

    // An endpoint shows its method, path, parameters and every answer it may give.
    let send = "#post-api-v1-rooms-room-id-messages";
    assert_eq!(page.text(&format!("{send} h3")).await, "POST /api/v1/rooms/{room_id}/messages");
    let statuses = page
        .client
        .execute(
            &format!(
                "return [...document.querySelectorAll('{send} dl.responses dt')].map(d => d.textContent);"
            ),
            vec![],
        )
        .await
        .expect("script runs");
    for status in ["201", "400", "401", "404", "429"] {
        assert!(
            statuses.as_array().expect("list").contains(&json!(status)),
            "{status} in {statuses}"
        );
    }
    assert!(page.text(send).await.contains("room_id"), "the path parameter is listed");
    let show = format!("document.querySelector('{send}').scrollIntoView(); return null;");
    page.client.execute(&show, vec![]).await.expect("script runs");
    page.screenshot("api-reference-endpoint").await;
    // The table of contents links to it under its tag.
    let entry = format!("#toc li[data-for='{}'] a", &send[1..]);
    assert_eq!(page.text(&entry).await, "POST /api/v1/rooms/{room_id}/messages");

    // The search box keeps what holds every word typed, in the page and in its contents.
    page.type_into("#filter", "avatar").await;
    let shown = "[...document.querySelectorAll('#operations section.operation[data-search]')]\
                 .filter(s => !s.hidden)";
    page.until("only the avatar endpoints shown", &format!("{shown}.length < {operations}")).await;
    let kept = page
        .client
        .execute(&format!("return {shown}.map(s => s.querySelector('h3').textContent);"), vec![])
        .await
        .expect("script runs");
    let kept: Vec<&str> = kept.as_array().expect("list").iter().filter_map(Value::as_str).collect();
    assert!(kept.contains(&"PUT /api/v1/me/avatar"), "kept {kept:?}");
    assert!(kept.contains(&"GET /api/v1/users/{user_id}/avatar"), "kept {kept:?}");
    assert!(!kept.contains(&"POST /api/v1/rooms/{room_id}/messages"), "kept {kept:?}");
    let entry_hidden = page
        .client
        .execute(
            &format!("return document.querySelector(\"{entry}\").parentElement.hidden;"),
            vec![],
        )
        .await
        .expect("script runs");
    assert_eq!(entry_hidden, json!(true), "the contents follow the search");
    page.screenshot("api-reference-search").await;

    // A schema named in an answer links to its own section.
    page.find("#filter").await.clear().await.expect("cleared");
    page.type_into("#filter", " ").await;
    page.until("everything shown again", &format!("{shown}.length === {operations}")).await;
    page.click(&format!("{send} a[href='#schema-Message']")).await;
    page.until("the Message schema reached", "location.hash === '#schema-Message'").await;
    assert!(
        page.text("#schema-Message").await.contains("seq"),
        "the Message schema lists its fields"
    );
    page.close().await;
}
