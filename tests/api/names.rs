//! Look-alike names: a username or a public room name that looks like a taken one is
//! refused as taken (UTS #39 confusable skeletons, with case, compatibility forms and
//! accents folded), invisible characters are refused by parsing before that, groups may
//! share names, two look-alikes at once cannot both pass, and a database whose names
//! came before the look-alike keys still starts, with every name working.

use std::path::Path;

use confab::config::Database;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::{ConnectOptions, Connection};

use crate::support::{
    TestApp, TestUser, each_store, fresh_database, spawn_app, spawn_app_with, spawn_nodes,
};

/// Asserts an error reply's status and code.
fn assert_error(reply: &(StatusCode, Value), status: StatusCode, code: &str, input: &str) {
    assert_eq!(reply.0, status, "{input:?}: {}", reply.1);
    assert_eq!(reply.1["error"]["code"], code, "{input:?}: {}", reply.1);
}

async fn register(app: &TestApp, username: &str) -> (StatusCode, Value) {
    let body = json!({ "username": username, "password": "correct horse battery" });
    app.call(reqwest::Method::POST, "/auth/register", None, Some(body)).await
}

async fn create_public(app: &TestApp, user: &TestUser, name: &str) -> (StatusCode, Value) {
    app.post(user, "/rooms", json!({ "name": name, "kind": "public" })).await
}

async fn directory_names(app: &TestApp, user: &TestUser) -> Vec<String> {
    let (status, body) = app.get(user, "/rooms/public").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let rooms = body["rooms"].as_array().expect("rooms");
    rooms.iter().map(|room| room["name"].as_str().expect("a name").to_owned()).collect()
}

#[each_store]
async fn a_username_that_looks_like_a_taken_one_is_409_username_taken() {
    let app = spawn_app().await;
    for taken in ["paypal", "alicel", "modern", "google"] {
        assert_eq!(register(&app, taken).await.0, StatusCode::CREATED, "{taken}");
    }
    let lookalikes = [
        ("paypa1", "digit one for l"),
        ("PAYPA1", "capitals, folded, and digit one"),
        ("alice1", "digit one for l"),
        ("rnodern", "r and n for m"),
        ("g00gle", "zeros for o"),
        ("modem", "r and n for m, the other way"),
    ];
    for (name, why) in lookalikes {
        let reply = register(&app, name).await;
        assert_error(&reply, StatusCode::CONFLICT, "username_taken", why);
        assert_eq!(reply.1["error"]["field"], "username");
        assert!(reply.1["error"]["message"].as_str().expect("a message").contains("looks"));
    }
    // What a username cannot hold at all is refused before it is compared.
    let unparsable = [
        ("p\u{0430}yp\u{0430}l", "Cyrillic а"),
        ("\u{FF50}\u{FF41}\u{FF59}\u{FF50}\u{FF41}\u{FF4C}", "full-width"),
        ("pay\u{200B}pal", "zero-width space"),
        ("pay\u{00AD}pal", "soft hyphen"),
    ];
    for (name, why) in unparsable {
        let reply = register(&app, name).await;
        assert_error(&reply, StatusCode::UNPROCESSABLE_ENTITY, "invalid_username", why);
    }
    for distinct in ["paypals", "alicia", "modest", "goggle"] {
        assert_eq!(register(&app, distinct).await.0, StatusCode::CREATED, "{distinct}");
    }
}

#[each_store]
async fn a_public_room_name_that_looks_like_a_taken_one_is_409_room_name_taken() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    for taken in ["general", "lounge", "Café"] {
        assert_eq!(create_public(&app, &alice, taken).await.0, StatusCode::CREATED, "{taken}");
    }
    let lookalikes = [
        ("gen\u{0435}ral", "Cyrillic е"),
        ("G\u{0415}N\u{0415}R\u{0410}L", "Cyrillic capitals"),
        ("GENERAL", "case"),
        ("\u{FF47}\u{FF45}\u{FF4E}\u{FF45}\u{FF52}\u{FF41}\u{FF4C}", "full-width"),
        ("\u{1D420}\u{1D41E}\u{1D427}\u{1D41E}\u{1D42B}\u{1D41A}\u{1D425}", "mathematical bold"),
        ("genera1", "digit one for l"),
        ("Général", "accents"),
        ("Iounge", "capital I for l"),
        ("1ounge", "digit one for l"),
        ("\u{0406}ounge", "Cyrillic І"),
        ("Cafe\u{0301}", "decomposed accent"),
        ("CAFE", "accent and case"),
    ];
    for (name, why) in lookalikes {
        let reply = create_public(&app, &bob, name).await;
        assert_error(&reply, StatusCode::CONFLICT, "room_name_taken", why);
        assert_eq!(reply.1["error"]["field"], "name");
    }
    for (name, why) in [("gen\u{00AD}eral", "soft hyphen"), ("gen\u{200B}eral", "zero-width space")]
    {
        let reply = create_public(&app, &bob, name).await;
        assert_error(&reply, StatusCode::UNPROCESSABLE_ENTITY, "invalid_room_name", why);
    }
    for distinct in ["generals", "general chat", "lounge 2", "Cafeteria"] {
        assert_eq!(create_public(&app, &bob, distinct).await.0, StatusCode::CREATED, "{distinct}");
    }
    assert_eq!(directory_names(&app, &bob).await.len(), 7);
}

#[each_store]
async fn private_groups_may_share_lookalike_names() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    app.create_room(&alice, "general", "public", &[]).await;

    app.create_room(&alice, "gen\u{0435}ral", "private", &[]).await;
    app.create_room(&alice, "gen\u{0435}ral", "private", &[]).await;
    app.create_room(&alice, "GENERAL", "private", &[]).await;
    assert_eq!(directory_names(&app, &alice).await, ["general"]);
}

#[each_store]
async fn two_lookalikes_registered_at_once_cannot_both_pass() {
    let nodes = &spawn_nodes().await;
    let alice = nodes[0].register("alice").await;
    for (one, other) in [("paypal", "paypa1"), ("modern", "rnodern"), ("google", "g00gle")] {
        let second = &nodes[nodes.len() - 1];
        let (a, b) = tokio::join!(register(&nodes[0], one), register(second, other));
        let created = [&a, &b].iter().filter(|reply| reply.0 == StatusCode::CREATED).count();
        assert_eq!(created, 1, "{one} and {other}: {a:?} {b:?}");
        let refused = if a.0 == StatusCode::CREATED { b } else { a };
        assert_error(&refused, StatusCode::CONFLICT, "username_taken", other);

        let room = format!("{one} room");
        let lookalike = format!("{other} room");
        let (a, b) = tokio::join!(
            create_public(&nodes[0], &alice, &room),
            create_public(second, &alice, &lookalike)
        );
        let created = [&a, &b].iter().filter(|reply| reply.0 == StatusCode::CREATED).count();
        assert_eq!(created, 1, "{room} and {lookalike}: {a:?} {b:?}");
    }
}

/// The migrations of each store from before the look-alike keys.
const SQLITE_BEFORE_KEYS: i64 = 4;
const POSTGRES_BEFORE_KEYS: i64 = 1;

/// Makes `database` as an earlier Confab left it: migrated up to the look-alike keys
/// (not including them), holding `rows` (SQL statements).
async fn database_before_name_keys(database: &Database, data_dir: &Path, rows: &str) {
    let migrations = |store: &str, last: i64| {
        let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations").join(store);
        async move {
            let mut migrator = sqlx::migrate::Migrator::new(folder).await.expect("migrations");
            let before: Vec<_> =
                migrator.migrations.iter().filter(|m| m.version <= last).cloned().collect();
            migrator.migrations = before.into();
            migrator
        }
    };
    match database {
        Database::Embedded => {
            let file = data_dir.join(confab::store::SQLITE_FILE);
            let mut db = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(file)
                .create_if_missing(true)
                .connect()
                .await
                .expect("create the database");
            let migrator = migrations("sqlite", SQLITE_BEFORE_KEYS).await;
            migrator.run_direct(&mut db).await.expect("earlier migrations");
            sqlx::raw_sql(rows).execute(&mut db).await.expect("earlier rows");
            db.close().await.expect("close");
        }
        Database::Postgres(url) => {
            let mut db = sqlx::PgConnection::connect(url).await.expect("connect");
            let migrator = migrations("postgres", POSTGRES_BEFORE_KEYS).await;
            migrator.run_direct(&mut db).await.expect("earlier migrations");
            sqlx::raw_sql(rows).execute(&mut db).await.expect("earlier rows");
            db.close().await.expect("close");
        }
    }
}

async fn login(app: &TestApp, username: &str) -> StatusCode {
    let body = json!({ "username": username, "password": "correct horse battery" });
    app.call(reqwest::Method::POST, "/auth/login", None, Some(body)).await.0
}

#[each_store]
async fn names_that_looked_alike_before_the_keys_both_keep_working() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let database = fresh_database().await;
    let hasher = confab::auth::PasswordHasher::new().expect("hasher");
    let hash = hasher.hash("correct horse battery").await.expect("hash");
    let rows = format!(
        "INSERT INTO users (id, username, display_name, display_key, password_hash, created_at)
         VALUES (101, 'alice1', 'alice1', 'alice1', '{hash}', 1000),
                (102, 'alicel', 'alicel', 'alicel', '{hash}', 2000),
                (103, 'carol', 'carol', 'carol', '{hash}', 3000);
         INSERT INTO rooms (id, kind, name, name_key, created_by, created_at)
         VALUES (201, 'public', 'general', 'general', 101, 1000),
                (202, 'public', 'gen\u{0435}ral', 'gen\u{0435}ral', 102, 2000),
                (203, 'private', 'general', 'general', 103, 3000);"
    );
    database_before_name_keys(&database, data_dir.path(), &rows).await;

    let start = || {
        let (database, dir) = (database.clone(), data_dir.path().to_path_buf());
        spawn_app_with(move |settings| {
            settings.database = database;
            settings.data_dir = dir;
        })
    };
    let mut app = start().await;
    for existing in ["alice1", "alicel", "carol"] {
        assert_eq!(login(&app, existing).await, StatusCode::OK, "{existing} logs in");
    }
    let bob = app.register("bob").await;
    let mut listed = directory_names(&app, &bob).await;
    listed.sort();
    assert_eq!(listed, ["general", "gen\u{0435}ral"]);

    // New names are held to the rule against the old ones, both of the look-alikes.
    assert_error(&register(&app, "a1ice1").await, StatusCode::CONFLICT, "username_taken", "a1ice1");
    assert_error(&register(&app, "caro1").await, StatusCode::CONFLICT, "username_taken", "caro1");
    let cyrillic_a = "gener\u{0430}l";
    let reply = create_public(&app, &bob, cyrillic_a).await;
    assert_error(&reply, StatusCode::CONFLICT, "room_name_taken", cyrillic_a);

    // Starting again finds every key in place.
    app.stop().await;
    let app = start().await;
    assert_eq!(login(&app, "alicel").await, StatusCode::OK);
    assert_error(&register(&app, "a1icel").await, StatusCode::CONFLICT, "username_taken", "again");
}
