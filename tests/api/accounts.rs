//! Accounts: registering and its validation rules, logging in and the throttle on failed
//! logins, sessions by bearer token and by cookie, logging out (which also closes that
//! session's WebSockets), and finding users.

use reqwest::header::{HeaderMap, RETRY_AFTER, SET_COOKIE, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::support::{TestApp, TestUser, described, each_store, spawn_app, spawn_app_with};

/// A response read in full, headers included.
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Reply {
    /// Sends `request` (its answer checked against the description) and reads the answer.
    async fn send(request: reqwest::RequestBuilder) -> Self {
        let answer = described::send(request).await;
        Self { status: answer.status, body: answer.json(), headers: answer.headers }
    }
}

/// The `error.code` of an error body.
fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_else(|| panic!("not an error body: {body}"))
}

async fn post_json(app: &TestApp, path: &str, body: Value) -> Reply {
    Reply::send(app.http.post(app.url(path)).json(&body)).await
}

async fn register_with(app: &TestApp, body: Value) -> Reply {
    post_json(app, "/auth/register", body).await
}

async fn login(app: &TestApp, username: &str, password: &str) -> Reply {
    post_json(app, "/auth/login", json!({ "username": username, "password": password })).await
}

/// The user a session reply stands for, as a `TestUser` holding that session's token.
fn session_user(reply: &Reply) -> TestUser {
    TestUser {
        id: reply.body["user"]["id"].as_str().expect("user id").to_owned(),
        username: reply.body["user"]["username"].as_str().expect("username").to_owned(),
        token: reply.body["token"].as_str().expect("token").to_owned(),
    }
}

/// Asserts a 422 with the given code and field.
fn assert_invalid(reply: &Reply, code: &str, field: &str, input: &str) {
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{input}: {}", reply.body);
    assert_eq!(error_code(&reply.body), code, "{input}: {}", reply.body);
    assert_eq!(reply.body["error"]["field"], field, "{input}: {}", reply.body);
}

/// `(name, value)` and the attributes of the one Set-Cookie header of the session (the
/// other is the device cookie).
fn session_cookie(headers: &HeaderMap) -> (String, Vec<String>) {
    let cookies: Vec<&str> = headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().expect("ascii cookie"))
        .filter(|cookie| !cookie.starts_with("confab_device="))
        .collect();
    assert_eq!(cookies.len(), 1, "one session Set-Cookie: {cookies:?}");
    let mut parts = cookies[0].split(';').map(str::trim);
    let pair = parts.next().expect("name=value").to_owned();
    (pair, parts.map(str::to_owned).collect())
}

async fn me_with_cookie(app: &TestApp, cookie: &str) -> Reply {
    Reply::send(app.http.get(app.url("/me")).header("cookie", cookie)).await
}

#[each_store]
async fn register_returns_201_with_the_user_a_token_and_an_http_only_session_cookie() {
    let app = spawn_app().await;
    let before = OffsetDateTime::now_utc();
    let reply =
        register_with(&app, json!({ "username": "alice", "password": "correct horse" })).await;

    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let user = &reply.body["user"];
    assert_eq!(user["username"], "alice");
    assert_eq!(user["id"].as_str().expect("id").len(), 13, "ids are 13 characters: {user}");
    assert!(user["created_at"].is_string(), "{user}");
    let token = reply.body["token"].as_str().expect("token");
    assert!(!token.is_empty());
    let expires_at =
        OffsetDateTime::parse(reply.body["expires_at"].as_str().expect("expires_at"), &Rfc3339)
            .expect("expires_at is RFC 3339");
    assert!(expires_at > before + time::Duration::days(29), "sessions last 30 days");

    let (pair, attributes) = session_cookie(&reply.headers);
    assert_eq!(pair, format!("confab_session={token}"));
    assert!(attributes.iter().any(|a| a == "HttpOnly"), "{attributes:?}");
    assert!(attributes.iter().any(|a| a == "SameSite=Lax"), "{attributes:?}");
    assert!(attributes.iter().any(|a| a == "Path=/"), "{attributes:?}");
    assert!(!attributes.iter().any(|a| a == "Secure"), "plain http: {attributes:?}");

    let (status, me) = app.get(&session_user(&reply), "/me").await;
    assert_eq!(status, StatusCode::OK);
    // `/me` adds whether you administer the server.
    let mut expected = user.clone();
    expected["admin"] = json!(false);
    assert_eq!(me, expected, "the token signs in as the new user");
}

#[each_store]
async fn display_name_defaults_to_the_username_and_is_trimmed_when_given() {
    let app = spawn_app().await;
    let plain = register_with(&app, json!({ "username": "plain", "password": "password1" })).await;
    assert_eq!(plain.status, StatusCode::CREATED, "{}", plain.body);
    assert_eq!(plain.body["user"]["display_name"], "plain");

    let named = register_with(
        &app,
        json!({ "username": "ada", "password": "password1", "display_name": "  Ada Lovelace  " }),
    )
    .await;
    assert_eq!(named.status, StatusCode::CREATED, "{}", named.body);
    assert_eq!(named.body["user"]["display_name"], "Ada Lovelace");
}

#[each_store]
async fn usernames_are_folded_to_lower_case_for_registering_and_logging_in() {
    let app = spawn_app().await;
    let reply = register_with(&app, json!({ "username": "Alice", "password": "password1" })).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(reply.body["user"]["username"], "alice");
    assert_eq!(reply.body["user"]["display_name"], "alice");

    let login = login(&app, "ALICE", "password1").await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.body);
    assert_eq!(login.body["user"]["id"], reply.body["user"]["id"]);
}

#[each_store]
async fn a_taken_username_is_409_username_taken_whatever_its_case() {
    let app = spawn_app().await;
    app.register("alice").await;
    for taken in ["alice", "ALICE", "Alice"] {
        let reply =
            register_with(&app, json!({ "username": taken, "password": "another password" })).await;
        assert_eq!(reply.status, StatusCode::CONFLICT, "{taken}: {}", reply.body);
        assert_eq!(error_code(&reply.body), "username_taken");
        assert_eq!(reply.body["error"]["field"], "username");
    }
}

#[each_store]
async fn usernames_must_be_3_to_32_characters_of_a_z_0_9_underscore_dot_dash() {
    let app = spawn_app().await;
    let too_long = "x".repeat(33);
    for bad in
        ["", "ab", too_long.as_str(), "al ice", "ålice", "alice!", "al@ce", "a/b/c", "ali\nce"]
    {
        let reply = register_with(&app, json!({ "username": bad, "password": "password1" })).await;
        assert_invalid(&reply, "invalid_username", "username", bad);
    }
    let longest = "y".repeat(32);
    for good in ["abc", longest.as_str(), "a_b.c-d0"] {
        let reply = register_with(&app, json!({ "username": good, "password": "password1" })).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{good}: {}", reply.body);
        assert_eq!(reply.body["user"]["username"], good);
    }
}

#[each_store]
async fn passwords_must_be_8_to_256_characters_and_not_the_username() {
    let app = spawn_app().await;
    let too_long = "p".repeat(257);
    for bad in ["", "seven77", "longname1", "LONGNAME1", too_long.as_str()] {
        let reply = register_with(&app, json!({ "username": "longname1", "password": bad })).await;
        assert_invalid(&reply, "invalid_password", "password", bad);
    }
    let longest = "p".repeat(256);
    for (username, good) in [("eight", "8 chars!"), ("longest", longest.as_str())] {
        let reply = register_with(&app, json!({ "username": username, "password": good })).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{good}: {}", reply.body);
        assert_eq!(login(&app, username, good).await.status, StatusCode::OK);
    }
}

#[each_store]
async fn display_names_must_be_1_to_64_printable_characters() {
    let app = spawn_app().await;
    let too_long = "é".repeat(65);
    for bad in ["", "   ", too_long.as_str(), "tab\there", "new\nline", "bell\u{7}", "del\u{7f}"] {
        let reply = register_with(
            &app,
            json!({ "username": "someone", "password": "password1", "display_name": bad }),
        )
        .await;
        assert_invalid(&reply, "invalid_display_name", "display_name", bad);
    }
    let longest = "é".repeat(64);
    let reply = register_with(
        &app,
        json!({ "username": "someone", "password": "password1", "display_name": longest }),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(reply.body["user"]["display_name"], longest.as_str());
}

/// A name must not pass for another or turn the line it is shown in around: invisible
/// formatting characters are refused, on registering and on renaming.
#[each_store]
async fn display_names_refuse_direction_overrides_zero_width_and_line_separators() {
    let app = spawn_app().await;
    let spoofs = [
        "\u{202E}nimda",         // right-to-left override: shows as "admin"
        "ad\u{2066}min\u{2069}", // an isolate
        "ad\u{200B}min",         // zero-width space
        "ad\u{200F}min",         // right-to-left mark
        "\u{FEFF}admin",         // byte order mark
        "two\u{2028}lines",      // line separator
        "two\u{2029}paras",      // paragraph separator
    ];
    for bad in spoofs {
        let reply = register_with(
            &app,
            json!({ "username": "someone", "password": "password1", "display_name": bad }),
        )
        .await;
        assert_invalid(&reply, "invalid_display_name", "display_name", bad);
    }
    let alice = app.register("alice").await;
    for bad in spoofs {
        let (status, body) = app
            .call(Method::PATCH, "/me", Some(&alice), Some(json!({ "display_name": bad })))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad:?}: {body}");
        assert_eq!(error_code(&body), "invalid_display_name", "{bad:?}: {body}");
    }
    let (status, me) = app.get(&alice, "/me").await;
    assert_eq!((status, &me["display_name"]), (StatusCode::OK, &json!("alice")), "unchanged");
    let reply = register_with(
        &app,
        json!({ "username": "zoe", "password": "password1", "display_name": "Zoë 李 محمد 🚀" }),
    )
    .await;
    assert_eq!(
        reply.status,
        StatusCode::CREATED,
        "other scripts and emoji are fine: {}",
        reply.body
    );
}

#[each_store]
async fn login_with_the_right_password_starts_a_new_session() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let reply = login(&app, "alice", "password-alice").await;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["user"]["id"], alice.id.as_str());
    assert!(reply.body["expires_at"].is_string(), "{}", reply.body);
    let second = session_user(&reply);
    assert_ne!(second.token, alice.token, "a new session has a new token");
    let (pair, attributes) = session_cookie(&reply.headers);
    assert_eq!(pair, format!("confab_session={}", second.token));
    assert!(attributes.iter().any(|a| a == "HttpOnly"), "{attributes:?}");
    assert!(attributes.iter().any(|a| a == "SameSite=Lax"), "{attributes:?}");

    for session in [&alice, &second] {
        let (status, me) = app.get(session, "/me").await;
        assert_eq!(status, StatusCode::OK, "both sessions work: {me}");
        assert_eq!(me["id"], alice.id.as_str());
    }
}

#[each_store]
async fn a_wrong_password_and_an_unknown_user_get_the_same_401_invalid_credentials() {
    let app = spawn_app().await;
    app.register("alice").await;
    let wrong_password = login(&app, "alice", "not her password").await;
    let unknown_user = login(&app, "nobody", "password-alice").await;
    let malformed_name = login(&app, "x!", "password-alice").await;

    for reply in [&wrong_password, &unknown_user, &malformed_name] {
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.body);
        assert_eq!(error_code(&reply.body), "invalid_credentials");
        assert!(reply.headers.get(SET_COOKIE).is_none(), "no session on failure");
    }
    assert_eq!(wrong_password.body, unknown_user.body, "nothing tells which names exist");
}

#[each_store]
async fn five_failed_logins_for_a_username_are_free() {
    let app = spawn_app().await;
    app.register("carol").await;
    for attempt in 1..=5 {
        let reply = login(&app, "carol", "guess").await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "attempt {attempt}: {}", reply.body);
    }
    let reply = login(&app, "carol", "password-carol").await;
    assert_eq!(reply.status, StatusCode::OK, "no wait after five failures: {}", reply.body);
}

#[each_store]
async fn further_failures_make_the_username_wait_429_with_retry_after_even_for_the_right_password()
{
    let app = spawn_app().await;
    app.register("carol").await;
    app.register("bob").await;
    for attempt in 1..=6 {
        let reply = login(&app, "carol", "guess").await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "attempt {attempt}: {}", reply.body);
    }

    let refused = login(&app, "carol", "password-carol").await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS, "{}", refused.body);
    assert_eq!(error_code(&refused.body), "rate_limited");
    let retry_after: u64 = refused
        .headers
        .get(RETRY_AFTER)
        .expect("Retry-After")
        .to_str()
        .expect("ascii")
        .parse()
        .expect("Retry-After in whole seconds");
    assert!(retry_after >= 1, "Retry-After: {retry_after}");

    let other = login(&app, "bob", "password-bob").await;
    assert_eq!(other.status, StatusCode::OK, "bob, same address, is not blocked: {}", other.body);
}

#[each_store]
async fn failed_logins_count_against_a_username_whatever_its_case() {
    let app = spawn_app().await;
    app.register("carol").await;
    for spelling in ["carol", "CAROL", "Carol", "cArol", "caRol", "carOL"] {
        let reply = login(&app, spelling, "guess").await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{spelling}: {}", reply.body);
    }
    let refused = login(&app, "carol", "password-carol").await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS, "{}", refused.body);
    assert_eq!(error_code(&refused.body), "rate_limited");
}

#[each_store]
async fn an_address_is_blocked_only_after_more_than_20_failures_across_usernames() {
    let app = spawn_app().await;
    app.register("bob").await;
    app.register("dave").await;
    // Twenty failures from this address, five per name so that no name is throttled.
    for name in ["ghost0", "ghost1", "ghost2", "ghost3"] {
        for _ in 0..5 {
            assert_eq!(login(&app, name, "guess").await.status, StatusCode::UNAUTHORIZED);
        }
    }
    let bob = login(&app, "bob", "password-bob").await;
    assert_eq!(bob.status, StatusCode::OK, "20 failures do not block others: {}", bob.body);

    assert_eq!(login(&app, "ghost4", "guess").await.status, StatusCode::UNAUTHORIZED);
    let dave = login(&app, "dave", "password-dave").await;
    assert_eq!(dave.status, StatusCode::TOO_MANY_REQUESTS, "the 21st blocks: {}", dave.body);
    assert_eq!(error_code(&dave.body), "rate_limited");
    assert!(dave.headers.get(RETRY_AFTER).is_some());
}

#[each_store]
async fn me_accepts_the_session_cookie_instead_of_a_bearer_token() {
    let app = spawn_app().await;
    let reply = register_with(&app, json!({ "username": "alice", "password": "password1" })).await;
    let (pair, _) = session_cookie(&reply.headers);

    let me = me_with_cookie(&app, &format!("theme=dark; {pair}")).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    let mut expected = reply.body["user"].clone();
    expected["admin"] = json!(false);
    assert_eq!(me.body, expected);

    let forged = me_with_cookie(&app, "confab_session=forged-token").await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&forged.body), "unauthenticated");
}

#[each_store]
async fn logout_is_204_and_the_token_and_cookie_stop_working_while_other_sessions_go_on() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let other = session_user(&login(&app, "alice", "password-alice").await);

    let reply = Reply::send(app.http.post(app.url("/auth/logout")).bearer_auth(&alice.token)).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
    let (pair, attributes) = session_cookie(&reply.headers);
    assert_eq!(pair, "confab_session=", "the cookie is cleared");
    assert!(attributes.iter().any(|a| a == "Max-Age=0"), "{attributes:?}");

    let (status, body) = app.get(&alice, "/me").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(error_code(&body), "unauthenticated");
    let by_cookie = me_with_cookie(&app, &format!("confab_session={}", alice.token)).await;
    assert_eq!(by_cookie.status, StatusCode::UNAUTHORIZED);
    let (status, _) = app.call(Method::POST, "/auth/logout", Some(&alice), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "an ended session cannot log out again");

    let (status, me) = app.get(&other, "/me").await;
    assert_eq!(status, StatusCode::OK, "the other session goes on: {me}");
}

#[each_store]
async fn logout_closes_that_sessions_websocket_with_4001_and_leaves_other_sessions_open() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let other = session_user(&login(&app, "alice", "password-alice").await);
    let mut ending = app.connect(&alice).await;
    let mut staying = app.connect(&other).await;

    let (status, body) = app.call(Method::POST, "/auth/logout", Some(&alice), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    assert_eq!(ending.expect_close().await, Some(4001));
    staying.send_json(json!({ "type": "ping", "id": "still-there" })).await;
    let pong = staying.recv().await;
    assert_eq!(pong["type"], "pong", "{pong}");
    assert_eq!(pong["id"], "still-there");
}

#[each_store]
async fn requests_without_a_valid_session_are_401_unauthenticated() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let routes = [
        (Method::GET, "/me".to_owned()),
        (Method::GET, "/users?q=a".to_owned()),
        (Method::GET, format!("/users/{}", alice.id)),
        (Method::GET, "/rooms".to_owned()),
        (Method::POST, "/auth/logout".to_owned()),
    ];
    for (method, path) in routes {
        let what = format!("{method} {path}");
        let (status, body) = app.call(method.clone(), &path, None, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "no credentials, {what}: {body}");
        assert_eq!(error_code(&body), "unauthenticated", "{what}");
        // An empty token, a made-up one, and a real one under the wrong scheme.
        let headers = [
            "Bearer ".to_owned(),
            "Bearer not-a-token".to_owned(),
            format!("Basic {}", alice.token),
        ];
        for header in headers {
            let request = app
                .http
                .request(method.clone(), app.url(&path))
                .header("authorization", header.as_str());
            let reply = Reply::send(request).await;
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{header}, {what}: {}", reply.body);
            assert_eq!(error_code(&reply.body), "unauthenticated", "{header}, {what}");
            assert_eq!(reply.headers.get(WWW_AUTHENTICATE).expect("WWW-Authenticate"), "Bearer");
        }
    }
}

fn usernames(page: &Value) -> Vec<&str> {
    page["users"]
        .as_array()
        .unwrap_or_else(|| panic!("a user list: {page}"))
        .iter()
        .map(|u| u["username"].as_str().expect("username"))
        .collect()
}

#[each_store]
async fn user_search_matches_username_and_display_name_prefixes_without_regard_to_case() {
    let app = spawn_app().await;
    for (username, display_name) in [
        ("alice", "Wonderland Alice"),
        ("alfred", "Butler"),
        ("bob", "Alpha Bob"),
        ("carol", "Carol"),
    ] {
        let reply = register_with(
            &app,
            json!({ "username": username, "password": "password1", "display_name": display_name }),
        )
        .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    }
    let carol = session_user(&login(&app, "carol", "password1").await);

    for (query, expected) in [
        ("al", vec!["alfred", "alice", "bob"]),
        ("AL", vec!["alfred", "alice", "bob"]),
        ("ali", vec!["alice"]),
        ("wonder", vec!["alice"]),
        ("WONDERLAND a", vec!["alice"]),
        ("but", vec!["alfred"]),
        ("lice", vec![]),
        ("zed", vec![]),
    ] {
        let (status, page) = app.get(&carol, &format!("/users?q={query}")).await;
        assert_eq!(status, StatusCode::OK, "{query}: {page}");
        assert_eq!(usernames(&page), expected, "q={query}");
    }

    let (_, page) = app.get(&carol, "/users?q=ali").await;
    let mut fields: Vec<&String> =
        page["users"][0].as_object().expect("a user object").keys().collect();
    fields.sort();
    assert_eq!(
        fields,
        ["avatar_url", "bio", "created_at", "display_name", "id", "username"],
        "nothing private"
    );
}

#[each_store]
async fn user_search_treats_like_wildcards_as_plain_characters() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    app.register("a_b").await;
    for (query, expected) in [("%25", vec![]), ("_", vec![]), ("a_", vec!["a_b"])] {
        let (status, page) = app.get(&alice, &format!("/users?q={query}")).await;
        assert_eq!(status, StatusCode::OK, "{query}: {page}");
        assert_eq!(usernames(&page), expected, "q={query}");
    }
}

#[each_store]
async fn user_search_takes_a_limit_from_1_to_50() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    app.register("albert").await;
    app.register("alan").await;

    let (status, page) = app.get(&alice, "/users?q=al&limit=2").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(usernames(&page), ["alan", "albert"]);
    for limit in [0, 51] {
        let (status, body) = app.get(&alice, &format!("/users?q=al&limit={limit}")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "limit={limit}: {body}");
        assert_eq!(error_code(&body), "invalid_limit");
        assert_eq!(body["error"]["field"], "limit");
    }
}

#[each_store]
async fn a_user_is_found_by_id_and_unknown_or_malformed_ids_are_404() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;

    let (status, user) = app.get(&alice, &format!("/users/{}", bob.id)).await;
    assert_eq!(status, StatusCode::OK, "{user}");
    assert_eq!(user["id"], bob.id.as_str());
    assert_eq!(user["username"], "bob");
    assert_eq!(user["display_name"], "bob");

    let upper = bob.id.to_uppercase();
    let (status, user) = app.get(&alice, &format!("/users/{upper}")).await;
    assert_eq!(status, StatusCode::OK, "ids are read without regard to case: {user}");
    assert_eq!(user["id"], bob.id.as_str());

    // A well-formed id nobody has, then strings that are not ids at all.
    for id in ["0000000000001", "nope", "zzzzzzzzzzzzz", "00000000000001", "0000000000000"] {
        let (status, body) = app.get(&alice, &format!("/users/{id}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{id}: {body}");
        assert_eq!(error_code(&body), "not_found", "{id}");
    }
}

#[each_store]
async fn guesses_sent_all_at_once_are_throttled_like_guesses_in_a_row() {
    let app = spawn_app().await;
    app.register("alice").await;
    let attempts = (0..20).map(|_| {
        app.call(
            reqwest::Method::POST,
            "/auth/login",
            None,
            Some(serde_json::json!({ "username": "alice", "password": "wrong password" })),
        )
    });
    let statuses: Vec<_> =
        futures_util::future::join_all(attempts).await.into_iter().map(|(s, _)| s).collect();
    let checked = statuses.iter().filter(|s| **s == reqwest::StatusCode::UNAUTHORIZED).count();
    let throttled =
        statuses.iter().filter(|s| **s == reqwest::StatusCode::TOO_MANY_REQUESTS).count();
    assert_eq!(checked, 6, "five free failures and the one that starts the wait: {statuses:?}");
    assert_eq!(throttled, 14);
}

/// A login attempt with a wrong password that says it was forwarded for `client`.
async fn login_forwarded(app: &TestApp, client: &str, username: &str) -> StatusCode {
    login_forwarded_with(app, client, username, "guess").await
}

async fn login_forwarded_with(
    app: &TestApp,
    client: &str,
    username: &str,
    password: &str,
) -> StatusCode {
    let request = app
        .http
        .post(app.url("/auth/login"))
        .header("x-forwarded-for", client)
        .json(&json!({ "username": username, "password": password }));
    described::send(request).await.status
}

/// A server behind a trusted proxy on loopback, so that tests speak for many addresses.
async fn behind_a_proxy() -> TestApp {
    spawn_app_with(|settings| {
        settings.trusted_proxies = vec!["127.0.0.0/8".parse().expect("a network")];
    })
    .await
}

#[each_store]
async fn a_guesser_at_one_address_cannot_lock_the_owner_out_from_another() {
    let app = behind_a_proxy().await;
    app.register("carol").await;
    // One wrong password each time the wait ends, as an attacker keeping the lock shut.
    let mut refused = 0;
    for _ in 0..12 {
        if login_forwarded(&app, "203.0.113.66", "carol").await == StatusCode::TOO_MANY_REQUESTS {
            refused += 1;
        }
    }
    assert!(refused > 0, "the guesser is made to wait");
    let owner = login_forwarded_with(&app, "198.51.100.7", "carol", "password-carol").await;
    assert_eq!(owner, StatusCode::OK, "the owner, elsewhere, signs in");
}

#[each_store]
async fn guesses_at_one_account_from_a_hundred_addresses_make_it_wait_everywhere() {
    let app = behind_a_proxy().await;
    app.register("carol").await;
    for i in 0..101 {
        let client = format!("198.18.{}.{}", i / 200, i % 200 + 1);
        assert_eq!(login_forwarded(&app, &client, "carol").await, StatusCode::UNAUTHORIZED, "{i}");
    }
    let owner = login_forwarded_with(&app, "198.51.100.7", "carol", "password-carol").await;
    assert_eq!(owner, StatusCode::TOO_MANY_REQUESTS, "the account waits");
    app.register("dave").await;
    let other = login_forwarded_with(&app, "198.51.100.7", "dave", "password-dave").await;
    assert_eq!(other, StatusCode::OK, "other accounts do not");
}

/// Twenty-one failures under five-per-name: the address `client` is then throttled.
async fn exhaust_address(app: &TestApp, client: &str) {
    for attempt in 0..21 {
        let name = format!("ghost{}", attempt / 5);
        assert_eq!(login_forwarded(app, client, &name).await, StatusCode::UNAUTHORIZED);
    }
}

#[each_store]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_budget() {
    let app = behind_a_proxy().await;
    exhaust_address(&app, "203.0.113.1").await;
    assert_eq!(login_forwarded(&app, "203.0.113.1", "ghost9").await, StatusCode::TOO_MANY_REQUESTS);
    // Another client behind the same proxy is not held back by the first.
    assert_eq!(login_forwarded(&app, "203.0.113.2", "ghost9").await, StatusCode::UNAUTHORIZED);
    // A client cannot prepend its way out: the proxy's own hop is what counts.
    let spoofed = "198.51.100.1, 203.0.113.1";
    assert_eq!(login_forwarded(&app, spoofed, "ghost9").await, StatusCode::TOO_MANY_REQUESTS);
}

#[each_store]
async fn a_forwarded_header_from_an_untrusted_peer_changes_nothing() {
    let app = spawn_app().await;
    exhaust_address(&app, "203.0.113.1").await;
    // The header is the client's own words: a new one each time does not reset the count.
    assert_eq!(login_forwarded(&app, "203.0.113.2", "ghost9").await, StatusCode::TOO_MANY_REQUESTS);
}

/// Signs in from `client` with `cookie` (a `confab_device` value) if given; returns the
/// status and the device cookie the answer sets, if any.
async fn login_from_device(
    app: &TestApp,
    client: &str,
    username: &str,
    password: &str,
    cookie: Option<&str>,
) -> (StatusCode, Option<String>) {
    let mut request = app
        .http
        .post(app.url("/auth/login"))
        .header("x-forwarded-for", client)
        .json(&json!({ "username": username, "password": password }));
    if let Some(cookie) = cookie {
        request = request.header("cookie", format!("confab_device={cookie}"));
    }
    let answer = described::send(request).await;
    (answer.status, device_cookie_of(&answer.headers))
}

/// The `confab_device` value a response sets.
fn device_cookie_of(headers: &reqwest::header::HeaderMap) -> Option<String> {
    headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(|value| value.strip_prefix("confab_device="))
        .map(|rest| rest.split(';').next().unwrap_or_default().to_owned())
}

#[each_store]
async fn a_browser_the_owner_signed_in_with_passes_an_account_under_attack() {
    let app = behind_a_proxy().await;
    app.register("carol").await;
    let (status, device) =
        login_from_device(&app, "198.51.100.7", "carol", "password-carol", None).await;
    assert_eq!(status, StatusCode::OK);
    let device = device.expect("a device cookie");
    // Guesses from a hundred addresses make the account wait everywhere, and guesses at
    // made-up names from the owner's own address (a shared NAT) make the address wait.
    for i in 0..101 {
        let client = format!("198.18.{}.{}", i / 200, i % 200 + 1);
        assert_eq!(login_forwarded(&app, &client, "carol").await, StatusCode::UNAUTHORIZED, "{i}");
    }
    exhaust_address(&app, "198.51.100.7").await;
    let (without, _) =
        login_from_device(&app, "198.51.100.7", "carol", "password-carol", None).await;
    assert_eq!(without, StatusCode::TOO_MANY_REQUESTS, "a new browser waits");
    let (with, renewed) =
        login_from_device(&app, "198.51.100.7", "carol", "password-carol", Some(&device)).await;
    assert_eq!(with, StatusCode::OK, "the owner's browser signs in");
    assert!(renewed.is_some_and(|renewed| renewed != device), "a new device id each time");
}

#[each_store]
async fn a_device_cookie_counts_its_own_failures_and_serves_its_account_only() {
    let app = behind_a_proxy().await;
    app.register("dave").await;
    app.register("erin").await;
    let (_, device) = login_from_device(&app, "198.51.100.8", "dave", "password-dave", None).await;
    let device = device.expect("a device cookie");
    // Someone holding the cookie guesses: five failures are free, then the device waits.
    for attempt in 0..6 {
        let (status, _) =
            login_from_device(&app, "203.0.113.9", "dave", "guess", Some(&device)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{attempt}");
    }
    let (status, _) =
        login_from_device(&app, "203.0.113.9", "dave", "password-dave", Some(&device)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "the device waits, whatever the password");
    // Its failures did not count against the account: Dave signs in elsewhere.
    let (status, _) = login_from_device(&app, "198.51.100.99", "dave", "password-dave", None).await;
    assert_eq!(status, StatusCode::OK);
    // For another account the cookie is nothing: Erin's guesser is throttled as anyone is.
    for _ in 0..6 {
        login_from_device(&app, "203.0.113.10", "erin", "guess", Some(&device)).await;
    }
    let (status, _) =
        login_from_device(&app, "203.0.113.10", "erin", "password-erin", Some(&device)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // A forged cookie is nothing either.
    let forged = format!("{}.AAAA", device.split('.').next().expect("an id"));
    let (status, _) =
        login_from_device(&app, "203.0.113.10", "erin", "password-erin", Some(&forged)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
}

#[each_store]
async fn the_device_cookie_is_for_the_sign_in_endpoints_only_and_outlives_logout() {
    let app = spawn_app().await;
    let body = json!({ "username": "frank", "password": "password-frank" });
    let reply = Reply::send(app.http.post(app.url("/auth/register")).json(&body)).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    let set_cookie: Vec<&str> = reply
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .collect();
    let device = set_cookie
        .iter()
        .find(|value| value.starts_with("confab_device="))
        .expect("registering trusts the browser that did it");
    for attribute in ["Path=/api/v1/auth", "HttpOnly", "SameSite=Strict", "Max-Age=31536000"] {
        assert!(device.contains(attribute), "{attribute} in {device}");
    }
    assert!(set_cookie.iter().any(|value| value.starts_with("confab_session=")));
}

#[each_store]
async fn device_cookies_hold_across_a_restart() {
    let app = behind_a_proxy().await;
    app.register("gina").await;
    let (_, device) = login_from_device(&app, "198.51.100.7", "gina", "password-gina", None).await;
    let device = device.expect("a device cookie");
    // Restarted with default settings, the server trusts no proxy: every request comes
    // from loopback, which is made to wait; the cookie signed before the restart still
    // passes, because the key is kept in the database.
    let app = app.restart().await;
    exhaust_address(&app, "ignored").await;
    let (status, _) = login_from_device(&app, "ignored", "gina", "password-gina", None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let (status, _) =
        login_from_device(&app, "ignored", "gina", "password-gina", Some(&device)).await;
    assert_eq!(status, StatusCode::OK);
}
