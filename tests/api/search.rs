//! Search: substrings in every script, only in rooms the searcher is in now, never a deleted
//! message or an edit's old text, with filters, paging and highlights; the same answers on
//! both stores, and an index that forgets what is deleted.

use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::Connection;

use crate::support::{TestApp, TestUser, database_files, each_store, files_holding, spawn_app};
use confab::config::Database;

/// Searches as `user`; the answer must be a 200.
async fn search(app: &TestApp, user: &TestUser, query: &str) -> Value {
    let (status, page) = app.get(user, &format!("/search?{query}")).await;
    assert_eq!(status, StatusCode::OK, "{query}: {page}");
    page
}

/// The bodies a search for `q` finds, newest first.
async fn found(app: &TestApp, user: &TestUser, q: &str) -> Vec<String> {
    let page = search(app, user, &format!("q={}&limit=50", encode(q))).await;
    bodies(&page)
}

fn bodies(page: &Value) -> Vec<String> {
    page["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["message"]["body"].as_str().expect("a body").to_owned())
        .collect()
}

/// Percent-encodes `text` for a query string.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The highlighted parts of a result's snippet.
fn highlighted(result: &Value) -> Vec<String> {
    let units: Vec<u16> =
        result["snippet"]["text"].as_str().expect("text").encode_utf16().collect();
    result["snippet"]["highlights"]
        .as_array()
        .expect("highlights")
        .iter()
        .map(|h| {
            let (start, end) = (
                h[0].as_u64().expect("as written") as usize,
                h[1].as_u64().expect("as written") as usize,
            );
            String::from_utf16(&units[start..end]).expect("whole characters")
        })
        .collect()
}

/// Messages in several scripts, sent oldest first.
const MESSAGES: &[&str] = &[
    "Order #48213-B shipped on Monday",
    "Who has the Permission to deploy?",
    "Un café crème, s'il vous plaît",
    "Die Straße ist lang",
    "Встреча в понедельник, не забудьте СЛОВАРЬ",
    "Η ΣΟΦΊΑ είναι δύναμη",
    "مَرْحَبًا بالعالم",
    "שָׁלוֹם עולם",
    "我的猫很可爱",
    "東京都に住んでいます",
    "がんばってください",
    "한국어 공부를 합니다",
    "Great work 👍🏽 team ❤\u{FE0F}",
    "new   york, new york",
    "I moved from york to new haven",
    "ＦＵＬＬ width ｶﾀｶﾅ text",
    // Half-width kana with voiced marks, decomposed (NFD) kana, conjoining Hangul jamo.
    "ｶﾞｲﾄﾞﾌﾞｯｸを買った",
    "か\u{3099}んばる",
    "\u{1112}\u{1161}\u{11AB}\u{1100}\u{116E}\u{11A8} \u{1109}\u{1165}\u{110B}\u{116E}\u{11AF}",
];

/// Queries and the messages (by index into MESSAGES) they find, newest first.
fn expectations() -> Vec<(&'static str, Vec<usize>)> {
    vec![
        ("48213", vec![0]),
        ("213-b", vec![0]),
        ("perm", vec![1]),
        ("PERMISSION deploy", vec![1]),
        ("cafe creme", vec![2]),
        ("STRASSE", vec![3]),
        ("strasse lang", vec![3]),
        ("понедельник", vec![4]),
        ("словарь", vec![4]),
        ("σοφια", vec![5]),
        ("ΔΥΝΑΜΗ", vec![5]),
        ("مرحبا", vec![6]),
        ("שלום", vec![7]),
        ("猫", vec![8]),
        ("可爱", vec![8]),
        ("京都", vec![9]),
        ("東", vec![9]),
        ("が", vec![17, 10]),
        ("か\u{3099}", vec![17, 10]),
        ("か", vec![]),
        ("ガイド", vec![16]),
        ("ｶﾞｲﾄﾞ", vec![16]),
        ("カイト", vec![]),
        ("한국", vec![18, 11]),
        ("서울", vec![18]),
        ("👍", vec![12]),
        ("❤", vec![12]),
        ("york", vec![14, 13]),
        ("\"new york\"", vec![13]),
        ("new york", vec![14, 13]),
        ("\"york to new\"", vec![14]),
        ("full カタカナ", vec![15]),
        // Latin e; the Greek ε of message 5 is another letter.
        ("e", vec![15, 14, 13, 12, 3, 2, 1, 0]),
        ("zz", vec![]),
        ("york paris", vec![]),
    ]
}

#[each_store]
async fn finds_words_parts_and_phrases_in_every_script() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let room = app.create_room(&alice, "world", "private", &[]).await;
    for body in MESSAGES {
        app.send(&alice, &room, body).await;
    }
    let mut wrong = Vec::new();
    for (query, hits) in expectations() {
        let expected: Vec<String> = hits.iter().map(|&i| MESSAGES[i].to_owned()).collect();
        let got = found(&app, &alice, query).await;
        if got != expected {
            wrong.push(format!("{query:?}: expected {expected:?}, found {got:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    // Highlights name what matched, in the text as written.
    let page = search(&app, &alice, &format!("q={}", encode("strasse"))).await;
    assert_eq!(highlighted(&page["results"][0]), ["Straße"]);
    let page = search(&app, &alice, &format!("q={}", encode("new york"))).await;
    assert_eq!(highlighted(&page["results"][1]), ["new", "york", "new", "york"]);
    let page = search(&app, &alice, &format!("q={}", encode("ΣΟΦΙΑ"))).await;
    assert_eq!(highlighted(&page["results"][0]), ["ΣΟΦΊΑ"]);
    let page = search(&app, &alice, &format!("q={}", encode("ガイド"))).await;
    assert_eq!(highlighted(&page["results"][0]), ["ｶﾞｲﾄﾞ"]);
    let page = search(&app, &alice, &format!("q={}", encode("team"))).await;
    let result = &page["results"][0];
    assert_eq!(result["message"]["room_id"], room.as_str());
    assert_eq!(result["message"]["author_id"], alice.id.as_str());
    assert_eq!(result["message"]["seq"], 13);
    assert_eq!(highlighted(result), ["team"]);
}

#[each_store]
async fn only_rooms_the_searcher_is_in_now_are_searched() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let shared = app.create_room(&alice, "shared", "private", &[&bob]).await;
    let bobs = app.create_room(&bob, "bobs", "private", &[]).await;
    let public = app.create_room(&bob, "lobby", "public", &[]).await;
    let dm = app.open_dm(&alice, &bob).await;
    app.send(&bob, &shared, "kumquat in the shared room").await;
    app.send(&bob, &bobs, "kumquat in bob's own room").await;
    app.send(&bob, &public, "kumquat in a public room alice never joined").await;
    app.send(&bob, &dm, "kumquat in the dm").await;

    assert_eq!(
        found(&app, &alice, "kumquat").await,
        ["kumquat in the dm", "kumquat in the shared room"]
    );
    assert_eq!(found(&app, &bob, "kumquat").await.len(), 4);
    // Naming a room one is not in finds nothing there, exactly as for a room that does not
    // exist.
    for room in [&bobs, &public, &"0000000000000".to_owned()] {
        let (status, error) = app.get(&alice, &format!("/search?q=kumquat&room_id={room}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{error}");
        assert_eq!(error["error"]["code"], "not_found");
    }

    // Blocking hides the DM from the blocker, in search too; unblocking brings it back.
    let (status, _) =
        app.call(reqwest::Method::PUT, &format!("/me/blocks/{}", bob.id), Some(&alice), None).await;
    assert!(status.is_success(), "{status}");
    assert_eq!(found(&app, &alice, "kumquat").await, ["kumquat in the shared room"]);
    let (status, _) = app.delete(&alice, &format!("/me/blocks/{}", bob.id)).await;
    assert!(status.is_success(), "{status}");
    assert_eq!(found(&app, &alice, "kumquat").await.len(), 2);

    // Leaving a room takes its messages out of one's search at once.
    let (status, _) = app.post(&alice, &format!("/rooms/{shared}/leave"), json!({})).await;
    assert!(status.is_success(), "{status}");
    assert_eq!(found(&app, &alice, "kumquat").await, ["kumquat in the dm"]);
}

#[each_store]
async fn deleted_messages_are_never_found_and_edits_by_their_new_text_only() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let room = app.create_room(&alice, "notes", "private", &[]).await;
    let doomed = app.send(&alice, &room, "the pelican code is 7731").await;
    let edited = app.send(&alice, &room, "meet at the harbour").await;
    app.send(&alice, &room, "pelican sighting").await;
    assert_eq!(found(&app, &alice, "pelican").await.len(), 2);

    let (status, _) = app
        .delete(
            &alice,
            &format!("/rooms/{room}/messages/{}", doomed["id"].as_str().expect("as written")),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(found(&app, &alice, "pelican").await, ["pelican sighting"]);
    assert!(found(&app, &alice, "7731").await.is_empty());

    let (status, _) = app
        .call(
            reqwest::Method::PATCH,
            &format!("/rooms/{room}/messages/{}", edited["id"].as_str().expect("as written")),
            Some(&alice),
            Some(json!({ "body": "meet at the lighthouse" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(found(&app, &alice, "harbour").await.is_empty(), "the old text is forgotten");
    assert_eq!(found(&app, &alice, "lighthouse").await, ["meet at the lighthouse"]);
}

#[each_store]
async fn filters_narrow_and_pages_cover_every_hit_once_newest_first() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let one = app.create_room(&alice, "one", "private", &[&bob]).await;
    let two = app.create_room(&alice, "two", "private", &[&bob]).await;
    let mut sent = Vec::new();
    for i in 0..23 {
        let (author, room) = if i % 2 == 0 { (&alice, &one) } else { (&bob, &two) };
        sent.push(app.send(author, room, &format!("walrus number {i}")).await);
    }

    // Paging: every hit once, newest first, whatever the page size.
    for limit in [1, 5, 50] {
        let mut seen = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let cursor = next.as_ref().map(|c| format!("&cursor={c}")).unwrap_or_default();
            let page = search(&app, &alice, &format!("q=walrus&limit={limit}{cursor}")).await;
            let bodies = bodies(&page);
            assert!(bodies.len() <= limit);
            seen.extend(bodies);
            match page["next"].as_str() {
                Some(cursor) => next = Some(cursor.to_owned()),
                None => break,
            }
        }
        let expected: Vec<String> = (0..23).rev().map(|i| format!("walrus number {i}")).collect();
        assert_eq!(seen, expected, "pages of {limit}");
    }

    let page = search(&app, &alice, &format!("q=walrus&room_id={two}&limit=50")).await;
    assert_eq!(bodies(&page).len(), 11);
    assert!(
        page["results"]
            .as_array()
            .expect("as written")
            .iter()
            .all(|r| r["message"]["room_id"] == two.as_str())
    );
    let page = search(&app, &alice, &format!("q=walrus&from={}&limit=50", alice.id)).await;
    assert_eq!(bodies(&page).len(), 12);
    assert!(
        page["results"]
            .as_array()
            .expect("as written")
            .iter()
            .all(|r| r["message"]["author_id"] == alice.id.as_str())
    );

    // Times: at or after `after`, before `before`.
    let at = |i: usize| sent[i]["created_at"].as_str().expect("as written").to_owned();
    let page = search(&app, &alice, &format!("q=walrus&limit=50&after={}", encode(&at(20)))).await;
    let after: HashSet<String> = bodies(&page).into_iter().collect();
    assert!(after.contains("walrus number 20") && after.contains("walrus number 22"));
    assert!(!after.iter().any(|b| b.ends_with(" 3")));
    let page = search(&app, &alice, &format!("q=walrus&limit=50&before={}", encode(&at(2)))).await;
    let before: HashSet<String> = bodies(&page).into_iter().collect();
    assert!(before.contains("walrus number 0") && !before.contains("walrus number 2"));

    // A long body gets a snippet around its match.
    let long = format!("{} the rare okapi {}", "padding ".repeat(60), "filler ".repeat(60));
    app.send(&alice, &one, &long).await;
    let page = search(&app, &alice, "q=okapi").await;
    let result = &page["results"][0];
    assert_eq!(result["message"]["body"], long.trim());
    let snippet = result["snippet"]["text"].as_str().expect("as written");
    assert!(
        snippet.starts_with('…') && snippet.ends_with('…') && snippet.chars().count() <= 202,
        "{snippet}"
    );
    assert_eq!(highlighted(result), ["okapi"]);
}

#[each_store]
async fn bad_searches_get_clear_errors() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    // The query itself is validated: 422, naming the field.
    let too_long = format!("q={}", "a".repeat(201));
    for (query, code) in [
        ("q=", "empty_query"),
        ("q=%20%20", "empty_query"),
        ("", "empty_query"),
        // Quotes around nothing and a variation selector: nothing to search for.
        ("q=%22%22%20%EF%B8%8F", "empty_query"),
        (too_long.as_str(), "query_too_long"),
        ("q=a%00b", "invalid_query_characters"),
        ("q=a%0Ab", "invalid_query_characters"),
    ] {
        let (status, error) = app.get(&alice, &format!("/search?{query}")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {error}");
        assert_eq!(error["error"]["code"], code, "{query}");
        assert_eq!(error["error"]["field"], "q", "{query}");
    }
    // The other parameters are malformed, not invalid: 400.
    for query in [
        "q=a&cursor=-1",
        "q=a&cursor=lfls",
        "q=a&cursor=",
        "q=a&after=yesterday",
        "q=a&before=soon",
        "q=a&from=nobody!",
    ] {
        let (status, error) = app.get(&alice, &format!("/search?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {error}");
        assert_eq!(error["error"]["code"], "invalid_query", "{query}");
    }
    for limit in [0, 51] {
        let (status, error) = app.get(&alice, &format!("/search?q=a&limit={limit}")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
        assert_eq!(error["error"]["code"], "invalid_limit");
    }
    let (status, _) = app.get(&alice, &format!("/search?q={}", "a".repeat(200))).await;
    assert_eq!(status, StatusCode::OK);
}

#[each_store]
async fn cursors_are_signed_by_the_server_and_outlive_a_restart() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let room = app.create_room(&alice, "notes", "private", &[]).await;
    for i in 0..3 {
        app.send(&alice, &room, &format!("walrus {i}")).await;
    }
    let page = search(&app, &alice, "q=walrus&limit=1").await;
    let next = page["next"].as_str().expect("a next page").to_owned();
    assert!(next.len() == 32 && !next.chars().all(|c| c.is_ascii_digit()), "{next}");

    // Changed anywhere, it is refused.
    for at in [0, next.len() - 1] {
        let mut tampered: Vec<char> = next.chars().collect();
        tampered[at] = if tampered[at] == 'A' { 'B' } else { 'A' };
        let tampered: String = tampered.into_iter().collect();
        let (status, error) = app.get(&alice, &format!("/search?q=walrus&cursor={tampered}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{tampered}: {error}");
        assert_eq!(error["error"]["code"], "invalid_query");
    }

    // Another server, with a key of its own, does not take it.
    let other = spawn_app().await;
    let bob = other.register("bob").await;
    let (status, error) = other.get(&bob, &format!("/search?q=walrus&cursor={next}")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");

    // The key is kept in the database, so a cursor outlives a restart.
    let app = app.restart().await;
    let page = search(&app, &alice, &format!("q=walrus&limit=1&cursor={next}")).await;
    assert_eq!(bodies(&page), ["walrus 1"]);
}

/// A connection of the test's own to a server's SQLite database.
async fn open_sqlite(app: &TestApp) -> sqlx::SqliteConnection {
    let url = format!("sqlite://{}", app.data_path().join("confab.db").display());
    sqlx::SqliteConnection::connect(&url).await.expect("open SQLite")
}

/// Runs SQL on the server's database (stopped or not), whichever it is.
async fn execute(app: &TestApp, sqlite: &str, postgres: &str) {
    match app.database() {
        Database::Embedded => {
            let mut db = open_sqlite(app).await;
            sqlx::raw_sql(sqlite).execute(&mut db).await.expect(sqlite);
        }
        Database::Postgres(url) => {
            let mut db = sqlx::PgConnection::connect(url).await.expect("connect");
            sqlx::raw_sql(postgres).execute(&mut db).await.expect(postgres);
        }
    }
}

#[each_store]
async fn messages_stored_before_search_came_in_are_indexed_as_the_store_opens() {
    let mut app = spawn_app().await;
    let alice = app.register("alice").await;
    let room = app.create_room(&alice, "old", "private", &[]).await;
    for i in 0..5 {
        app.send(&alice, &room, &format!("heron {i}")).await;
    }
    let gone = app.send(&alice, &room, "heron deleted").await;
    let (status, _) = app
        .delete(
            &alice,
            &format!("/rooms/{room}/messages/{}", gone["id"].as_str().expect("as written")),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    app.stop().await;
    // The database as a migration leaves one made before search, or with an index made
    // another way: on SQLite nothing indexed, on PostgreSQL numbers and terms of the old
    // kind (a sequence's numbers, no room or author terms), which migration 0006 leaves in
    // place; and the index's version not the server's.
    execute(
        &app,
        "INSERT INTO search_text (search_text) VALUES ('delete-all');
         UPDATE messages SET search_pos = NULL; UPDATE search_state SET terms_version = 0;",
        "UPDATE messages SET search_ord = nextval('messages_search_order'), search_terms = '{}'
             WHERE deleted_at IS NULL;
         UPDATE search_state SET terms_version = 0;",
    )
    .await;
    let app = app.restart().await;
    let expected: Vec<String> = (0..5).rev().map(|i| format!("heron {i}")).collect();
    assert_eq!(found(&app, &alice, "heron").await, expected);
    let newer = app.send(&alice, &room, "heron after").await;
    assert_eq!(found(&app, &alice, "heron").await[0], newer["body"].as_str().expect("as written"));
}

// SQLite only: it reads the full-text index's own vocabulary and the bytes of `confab.db`.
// The body leaving the files is `conversation::deletes::a_deleted_message_body_leaves_the_database_files`.
#[tokio::test]
async fn a_deleted_message_and_an_edits_old_text_leave_the_search_index_on_disk() {
    let mut app = spawn_app().await;
    let alice = app.register("alice").await;
    let room = app.create_room(&alice, "notes", "private", &[]).await;
    app.send(&alice, &room, "an ordinary message").await;
    app.stop().await;
    let before = index_terms(&app).await;
    let mut app = app.restart().await;
    // Characters nothing else holds: every one of their terms is their own.
    let doomed = app.send(&alice, &room, "龘靐齉 ꙮ ᚠᛇᚻ 𓀀𓀁").await;
    let edited = app.send(&alice, &room, "䨻䨺 ᚦᚨᚱ ꙭꙬ 𓃰𓃱").await;
    app.stop().await;
    let with = index_terms(&app).await;
    let theirs: HashSet<&String> = with.difference(&before).collect();
    assert!(theirs.len() > 40, "{} terms of their own", theirs.len());

    // The index as one segment, so that where each term is stored is known: in order, each
    // after what it shares with the one before, which is stored as a length.
    execute(&app, "INSERT INTO search_text (search_text) VALUES ('optimize')", "").await;
    let mut all: Vec<&String> = with.iter().collect();
    all.sort();
    let stored: Vec<&str> = all
        .windows(2)
        .filter(|pair| theirs.contains(pair[1]))
        .map(|pair| {
            let shared = pair[0].bytes().zip(pair[1].bytes()).take_while(|(a, b)| a == b).count();
            &pair[1][shared..]
        })
        // Long enough (30 bits and more) that nothing else holds one by chance.
        .filter(|piece| piece.len() >= 6)
        .collect();
    assert!(stored.len() >= 10, "{} recognisable terms", stored.len());
    let files = database_files(app.data_path());
    let missing: Vec<&&str> =
        stored.iter().filter(|piece| files_holding(&files, piece).is_empty()).collect();
    assert!(missing.is_empty(), "the scan finds the index's terms: {missing:?} missing");

    let mut app = app.restart().await;
    let (status, _) =
        app.delete(&alice, &format!("/rooms/{room}/messages/{}", id_of(&doomed))).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .call(
            reqwest::Method::PATCH,
            &format!("/rooms/{room}/messages/{}", id_of(&edited)),
            Some(&alice),
            Some(json!({ "body": "plain words now" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(found(&app, &alice, "plain words").await, ["plain words now"]);
    app.stop().await;

    let left: Vec<String> =
        index_terms(&app).await.into_iter().filter(|t| theirs.contains(t)).collect();
    assert!(left.is_empty(), "terms of the old texts still in the index: {left:?}");
    let files = database_files(app.data_path());
    let on_disk: Vec<&&str> =
        stored.iter().filter(|piece| !files_holding(&files, piece).is_empty()).collect();
    assert!(
        on_disk.is_empty(),
        "{} of {} terms of the old texts on disk: {on_disk:?}",
        on_disk.len(),
        stored.len()
    );
}

fn id_of(message: &Value) -> &str {
    message["id"].as_str().expect("a message id")
}

/// The terms the full-text index holds for at least one message.
async fn index_terms(app: &TestApp) -> HashSet<String> {
    let mut db = open_sqlite(app).await;
    sqlx::raw_sql("CREATE VIRTUAL TABLE temp.terms USING fts5vocab(main, search_text, 'row')")
        .execute(&mut db)
        .await
        .expect("vocabulary");
    sqlx::query_scalar::<_, String>("SELECT term FROM temp.terms WHERE doc > 0")
        .fetch_all(&mut db)
        .await
        .expect("terms")
        .into_iter()
        .collect()
}
