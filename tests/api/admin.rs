//! Administration: the real `confab admin` run beside a running server, on its data
//! directory and database (creating users, resetting passwords, ending sessions,
//! deactivating and reactivating, listing, making administrators), and the administrators'
//! HTTP API (the accounts list, deactivating, deleting in public rooms). A deactivated
//! user's open socket must close at once, whichever process made the change; on a
//! cluster, whichever node the socket is on.

use std::path::Path;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{TestApp, TestUser, WsClient, each_store, spawn_app, spawn_cluster};
use confab::config::Database;

/// The close code of a WebSocket whose session ended (docs/api.md).
const SESSION_ENDED: u16 = 4001;

/// What a run of `confab admin` did.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn assert_ok(&self, what: &str) {
        assert_eq!(self.code, Some(0), "{what}: {}\n{}", self.stdout, self.stderr);
    }

    /// The password the command printed once.
    fn password(&self) -> String {
        self.stdout
            .lines()
            .find_map(|line| line.strip_prefix("one-time password: "))
            .unwrap_or_else(|| panic!("no password printed: {}", self.stdout))
            .to_owned()
    }
}

/// Runs `confab admin <args>` on the store `app` runs on (its data directory, its
/// database), with `stdin` as its standard input.
async fn admin(app: &TestApp, args: &[&str], stdin: Option<&str>) -> Run {
    admin_on(app.data_path(), app.database(), None, args, stdin).await
}

/// Runs `confab admin <args>` on `data_dir`, `database` and, if given, Redis.
async fn admin_on(
    data_dir: &Path,
    database: &Database,
    redis: Option<&str>,
    args: &[&str],
    stdin: Option<&str>,
) -> Run {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_confab"));
    command
        .arg("admin")
        .args(args)
        .env("CONFAB_DATA_DIR", data_dir)
        .env("CONFAB_LOG", "warn")
        .env_remove("CONFAB_DATABASE_URL")
        .env_remove("CONFAB_REDIS_URL")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    if let Database::Postgres(url) = database {
        command.env("CONFAB_DATABASE_URL", url);
    }
    if let Some(redis) = redis {
        command.env("CONFAB_REDIS_URL", redis);
    }
    let mut child = command.spawn().expect("run confab admin");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        tokio::io::AsyncWriteExt::write_all(&mut input, text.as_bytes()).await.expect("stdin");
    }
    drop(input);
    let output = child.wait_with_output().await.expect("confab admin ends");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

async fn login(app: &TestApp, username: &str, password: &str) -> (StatusCode, Value) {
    let body = json!({ "username": username, "password": password });
    app.call(reqwest::Method::POST, "/auth/login", None, Some(body)).await
}

/// Waits (within the harness's patience) for the server to close `ws` as a session ended.
async fn assert_closed_as_session_ended(ws: &mut WsClient, whose: &str) {
    assert_eq!(ws.expect_close().await, Some(SESSION_ENDED), "{whose}'s socket closes");
}

/// A registered user made an administrator with `confab admin make-admin`.
pub(crate) async fn administrator(app: &TestApp, username: &str) -> TestUser {
    let user = app.register(username).await;
    admin(app, &["make-admin", username], None).await.assert_ok("make-admin");
    user
}

#[each_store]
async fn a_user_created_by_the_command_signs_in_and_a_reset_replaces_the_password() {
    let app = spawn_app().await;
    app.register("someone").await;

    let created = admin(&app, &["create-user", "carol", "--display-name", "Carol C"], None).await;
    created.assert_ok("create-user");
    let first = created.password();
    assert!(first.len() >= 20, "a strong password: {first}");
    let (status, body) = login(&app, "carol", &first).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["display_name"], "Carol C");
    let carol = TestUser {
        id: body["user"]["id"].as_str().expect("id").to_owned(),
        username: "carol".to_owned(),
        token: body["token"].as_str().expect("token").to_owned(),
    };
    let mut ws = app.connect(&carol).await;

    let reset =
        admin(&app, &["reset-password", "carol", "--password-stdin"], Some("a new secret 42\n"))
            .await;
    reset.assert_ok("reset-password");
    assert!(!reset.stdout.contains("one-time password"), "{}", reset.stdout);
    assert_eq!(login(&app, "carol", &first).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(login(&app, "carol", "a new secret 42").await.0, StatusCode::OK);
    // A reset signs out whoever held the old password.
    assert_closed_as_session_ended(&mut ws, "carol").await;
    assert_eq!(app.get(&carol, "/me").await.0, StatusCode::UNAUTHORIZED);

    let generated = admin(&app, &["reset-password", "carol"], None).await;
    generated.assert_ok("reset-password");
    assert_eq!(login(&app, "carol", &generated.password()).await.0, StatusCode::OK);

    let taken = admin(&app, &["create-user", "carol"], None).await;
    assert_eq!(taken.code, Some(4), "{}", taken.stderr);
    assert!(taken.stderr.contains("username_taken"), "{}", taken.stderr);
}

#[each_store]
async fn ending_sessions_refuses_the_token_and_closes_the_socket_at_once() {
    let app = spawn_app().await;
    let bob = app.register("bob").await;
    let mut ws = app.connect(&bob).await;

    let ended = admin(&app, &["end-sessions", "bob"], None).await;
    ended.assert_ok("end-sessions");
    assert!(ended.stdout.contains("sessions ended: 1"), "{}", ended.stdout);
    assert_closed_as_session_ended(&mut ws, "bob").await;
    assert_eq!(app.get(&bob, "/me").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(login(&app, "bob", "password-bob").await.0, StatusCode::OK, "bob may sign in");
}

#[each_store]
async fn a_deactivated_user_is_signed_out_everywhere_refused_and_let_back_by_reactivation() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let dave = app.register("dave").await;
    let room = app.create_room(&alice, "general", "public", &[]).await;
    let (status, _) = app.post(&dave, &format!("/rooms/{room}/join"), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    app.send(&dave, &room, "before I go").await;
    let mut ws = app.connect(&dave).await;

    admin(&app, &["deactivate", "dave"], None).await.assert_ok("deactivate");
    assert_closed_as_session_ended(&mut ws, "dave").await;
    assert_eq!(app.get(&dave, "/me").await.0, StatusCode::UNAUTHORIZED);
    let (status, body) = login(&app, "dave", "password-dave").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "account_deactivated");
    // A wrong password learns nothing.
    assert_eq!(login(&app, "dave", "not-his-password").await.0, StatusCode::UNAUTHORIZED);

    // What they said and who they were stay for others.
    assert_eq!(app.get(&alice, &format!("/users/{}", dave.id)).await.0, StatusCode::OK);
    let history = app.whole_history(&alice, &room).await;
    assert!(history.iter().any(|m| m["body"] == "before I go"), "{history:?}");
    // But nobody brings them into a room or a DM.
    let (status, body) = app
        .post(&alice, "/rooms", json!({ "name": "g", "kind": "private", "member_ids": [dave.id] }))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("user_deactivated"))
    );
    let (status, body) = app.post(&alice, &format!("/dm/{}", dave.id), json!({})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("user_deactivated"))
    );

    let listed = admin(&app, &["list-users", "--json"], None).await;
    listed.assert_ok("list-users");
    let users: Vec<Value> =
        listed.stdout.lines().map(|line| serde_json::from_str(line).expect("JSON")).collect();
    let status_of =
        |name: &str| users.iter().find(|u| u["username"] == name).map(|u| u["deactivated"].clone());
    assert_eq!(status_of("dave"), Some(json!(true)), "{users:?}");
    assert_eq!(status_of("alice"), Some(json!(false)), "{users:?}");
    let table = admin(&app, &["list-users"], None).await;
    table.assert_ok("list-users");
    assert!(table.stdout.lines().any(|l| l.starts_with("dave ") && l.contains("deactivated")));

    admin(&app, &["reactivate", "dave"], None).await.assert_ok("reactivate");
    assert_eq!(login(&app, "dave", "password-dave").await.0, StatusCode::OK);
}

#[each_store]
async fn an_unknown_user_is_a_sentence_and_exit_code_3() {
    let app = spawn_app().await;
    app.register("someone").await;
    for command in ["deactivate", "reactivate", "end-sessions", "make-admin", "reset-password"] {
        let run = admin(&app, &[command, "nobody"], None).await;
        assert_eq!(run.code, Some(3), "{command}: {}", run.stderr);
        assert!(run.stderr.contains("no user named \"nobody\""), "{command}: {}", run.stderr);
    }
}

#[each_store]
async fn administrators_list_and_deactivate_users_over_http_and_others_get_403() {
    let app = spawn_app().await;
    let alice = administrator(&app, "alice").await;
    let bob = app.register("bob").await;
    assert_eq!(app.get(&alice, "/me").await.1["admin"], true);
    assert_eq!(app.get(&bob, "/me").await.1["admin"], false);

    for (method, path) in [
        (reqwest::Method::GET, "/admin/users".to_owned()),
        (reqwest::Method::POST, format!("/admin/users/{}/deactivate", alice.id)),
        (reqwest::Method::POST, format!("/admin/users/{}/reactivate", alice.id)),
    ] {
        let (status, body) = app.call(method, &path, Some(&bob), None).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("not_admin")),
            "{path}"
        );
    }

    let (status, page) = app.get(&alice, "/admin/users?q=b&limit=10").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let names: Vec<&str> = page["users"]
        .as_array()
        .expect("users")
        .iter()
        .filter_map(|u| u["username"].as_str())
        .collect();
    assert_eq!(names, ["bob"]);
    let (_, first) = app.get(&alice, "/admin/users?limit=1").await;
    assert_eq!(first["users"][0]["username"], "alice");
    assert_eq!(first["users"][0]["admin"], true);
    assert_eq!(first["next"], "alice");
    let (_, second) = app.get(&alice, "/admin/users?limit=1&after=alice").await;
    assert_eq!(second["users"][0]["username"], "bob");
    assert_eq!(second["next"], Value::Null);

    let mut ws = app.connect(&bob).await;
    let (status, body) =
        app.post(&alice, &format!("/admin/users/{}/deactivate", bob.id), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["user"]["deactivated"].as_bool(), body["sessions_ended"].as_u64()),
        (Some(true), Some(1))
    );
    assert_closed_as_session_ended(&mut ws, "bob").await;
    assert_eq!(login(&app, "bob", "password-bob").await.0, StatusCode::FORBIDDEN);
    let (status, body) =
        app.post(&alice, &format!("/admin/users/{}/deactivate", alice.id), json!({})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("cannot_deactivate_self"))
    );
    let (status, _) =
        app.post(&alice, &format!("/admin/users/{}/reactivate", bob.id), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(login(&app, "bob", "password-bob").await.0, StatusCode::OK);

    admin(&app, &["revoke-admin", "alice"], None).await.assert_ok("revoke-admin");
    assert_eq!(app.get(&alice, "/admin/users").await.0, StatusCode::FORBIDDEN);
    assert_eq!(app.get(&alice, "/me").await.1["admin"], false);
}

#[each_store]
async fn an_administrator_deletes_in_public_rooms_live_but_private_rooms_they_are_not_in_do_not_exist()
 {
    let app = spawn_app().await;
    let alice = administrator(&app, "alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let public = app.create_room(&bob, "lobby", "public", &[&carol]).await;
    let private = app.create_room(&bob, "secret", "private", &[&carol]).await;
    let said = app.send(&bob, &public, "spam spam spam").await;
    let hidden = app.send(&bob, &private, "between us").await;
    let mut carol_ws = app.connect(&carol).await;

    // Not a member, not the author, not the owner: as an administrator.
    let (status, tombstone) = app
        .delete(
            &alice,
            &format!("/admin/rooms/{public}/messages/{}", said["id"].as_str().expect("id")),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{tombstone}");
    assert_eq!(tombstone["deleted"], true);
    let deleted = carol_ws.recv_type("message.deleted").await;
    assert_eq!(deleted["message"]["id"], said["id"]);
    assert_eq!(deleted["room_id"], public.as_str());

    let (status, body) = app
        .delete(
            &alice,
            &format!("/admin/rooms/{private}/messages/{}", hidden["id"].as_str().expect("id")),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let history = app.whole_history(&carol, &private).await;
    assert_eq!(history[0]["body"], "between us");

    // Anyone else gets 403 there, member or not.
    let other = app.send(&bob, &public, "still here").await;
    let path = format!("/admin/rooms/{public}/messages/{}", other["id"].as_str().expect("id"));
    assert_eq!(app.delete(&carol, &path).await.0, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn on_a_cluster_the_command_closes_a_deactivated_users_socket_on_another_node() {
    let Some(cluster) = spawn_cluster(2).await else { return };
    let (a, b) = (&cluster.nodes[0], &cluster.nodes[1]);
    let bob = a.register("bob").await;
    let mut ws = b.connect(&bob).await;

    // The command runs elsewhere (a data directory of its own, no server there) and tells
    // the nodes through Redis.
    let elsewhere = tempfile::tempdir().expect("temp dir");
    let run = admin_on(
        elsewhere.path(),
        a.database(),
        Some(&cluster.redis.url()),
        &["deactivate", "bob"],
        None,
    )
    .await;
    run.assert_ok("deactivate");
    assert_closed_as_session_ended(&mut ws, "bob").await;
    assert_eq!(b.get(&bob, "/me").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(login(a, "bob", "password-bob").await.0, StatusCode::FORBIDDEN);
}
