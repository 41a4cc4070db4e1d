//! What the store promises the realtime layer, asked of the store itself (the library's
//! `confab::store::open`) with a change sink that records every announcement: many
//! writers in one room at once take every seq once, each change is announced once, after
//! its commit (a reader of its own already finds it), and each room's changes in seq order,
//! however their transactions started; and nothing a member sends is announced after
//! their removal. On PostgreSQL two stores share one database, as two server processes do.
//!
//! These look past the API on purpose: through it, a connection's gap filling would hide a
//! store that announced out of order.

use std::sync::{Arc, Mutex};

use confab::config::Database;
use confab::domain::{
    ClientId, DisplayName, Message, MessageBody, MessageId, RoomId, RoomKind, RoomName, Timestamp,
    UserId, Username,
};
use confab::store::{
    Change, ChangeSink, Inserted, NewMessage, NewRoom, NewUser, Store, StoreError,
};
use futures_util::future::join_all;

use crate::support::{each_store, eventually, fresh_database};

/// What one store announced, in order, and whether each announced message could already be
/// read by another connection when it was announced.
#[derive(Default)]
struct Announced {
    changes: Vec<Change>,
    /// Messages announced before a reader found them: must stay empty.
    unseen: Vec<i64>,
}

/// A store on the test's database whose announcements are recorded; each new message is
/// looked up through `reader` while its announcement is being made.
async fn recorded(
    database: &Database,
    data_dir: &std::path::Path,
    reader: Option<Arc<Reader>>,
) -> (Arc<dyn Store>, Arc<Mutex<Announced>>) {
    let announced = Arc::new(Mutex::new(Announced::default()));
    let record = announced.clone();
    let sink: ChangeSink = Arc::new(move |change: &Change| {
        let mut unseen = None;
        if let (Some(reader), Change::MessageCreated(message)) = (&reader, change) {
            // The sink may not wait, but this test may: it runs on a multi-threaded runtime.
            let (reader, id) = (reader.clone(), message.id);
            let found = tokio::task::block_in_place(|| {
                tokio::runtime::Handle::current().block_on(reader.finds(id))
            });
            if !found {
                unseen = Some(message.seq);
            }
        }
        let mut announced = record.lock().expect("not poisoned");
        announced.changes.push(change.clone());
        announced.unseen.extend(unseen);
    });
    let store = confab::store::open(database, data_dir, std::time::Duration::ZERO, sink)
        .await
        .expect("the store opens");
    (store, announced)
}

/// A connection of the test's own to the store's database, for reading: not a second
/// store, since the embedded database is locked by the store that has it open.
enum Reader {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl Reader {
    /// Whether a committed message is there to be read.
    async fn finds(&self, id: MessageId) -> bool {
        let query = "SELECT COUNT(*) FROM messages WHERE id = $1";
        let count: Result<i64, sqlx::Error> = match self {
            Reader::Sqlite(pool) => {
                sqlx::query_scalar(query).bind(id.as_i64()).fetch_one(pool).await
            }
            Reader::Postgres(pool) => {
                sqlx::query_scalar(query).bind(id.as_i64()).fetch_one(pool).await
            }
        };
        count.expect("the reader reads") == 1
    }
}

async fn reader(database: &Database, data_dir: &std::path::Path) -> Arc<Reader> {
    Arc::new(match database {
        Database::Embedded => {
            let options = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(data_dir.join("confab.db"))
                .read_only(true);
            Reader::Sqlite(sqlx::SqlitePool::connect_lazy_with(options))
        }
        Database::Postgres(url) => {
            Reader::Postgres(sqlx::PgPool::connect_lazy(url).expect("a URL"))
        }
    })
}

async fn user(store: &dyn Store, name: &str) -> UserId {
    let user = NewUser {
        id: UserId::generate(),
        username: Username::parse(name).expect("a valid name"),
        display_name: DisplayName::from_trusted(name.to_owned()),
        password_hash: "not a real hash".to_owned(),
        created_at: Timestamp::now(),
        identity: None,
    };
    store.create_user(user).await.expect("user created").id
}

async fn room(store: &dyn Store, owner: UserId, members: Vec<UserId>) -> RoomId {
    let room = NewRoom {
        id: RoomId::generate(),
        kind: RoomKind::Private,
        name: RoomName::parse("together").expect("a valid name"),
        created_by: owner,
        created_at: Timestamp::now(),
    };
    let id = room.id;
    store.create_room(room, members).await.expect("room created");
    id
}

fn message(room: RoomId, author: UserId, n: usize) -> NewMessage {
    NewMessage {
        id: MessageId::generate(),
        room_id: room,
        author_id: author,
        body: MessageBody::parse(&format!("message {n}")).expect("a valid body"),
        client_id: Some(ClientId::parse(&format!("c-{n}")).expect("a valid client id")),
        reply_to: None,
        attachments: Vec::new(),
        created_at: Timestamp::now(),
    }
}

/// The seqs of a room's events (messages, edits, deletions, reactions) in announcement order.
fn room_seqs(changes: &[Change], room: RoomId) -> Vec<i64> {
    changes
        .iter()
        .filter_map(|change| match change {
            Change::MessageCreated(m) if m.room_id == room => Some(m.seq),
            Change::MessageEdited { seq, message } | Change::MessageDeleted { seq, message }
                if message.room_id == room =>
            {
                Some(*seq)
            }
            Change::ReactionChanged { room_id, seq, .. } if *room_id == room => Some(*seq),
            _ => None,
        })
        .collect()
}

fn stored(inserted: Result<Inserted, StoreError>) -> Message {
    match inserted {
        Ok(Inserted::New(message)) => message,
        other => panic!("a new message, not {:?}", other.map(|_| "a retry")),
    }
}

#[each_store(flavor = "multi_thread", worker_threads = 4)]
async fn many_writers_in_one_room_are_announced_once_each_after_commit_in_seq_order() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let database = fresh_database().await;
    let check = reader(&database, data_dir.path()).await;
    let (first, first_saw) = recorded(&database, data_dir.path(), Some(check.clone())).await;
    // On PostgreSQL a second store on the same database, as a second server process.
    let second = match database {
        Database::Postgres(_) => Some(recorded(&database, data_dir.path(), Some(check)).await),
        Database::Embedded => None,
    };
    let stores: Vec<&dyn Store> =
        std::iter::once(first.as_ref()).chain(second.as_ref().map(|(s, _)| s.as_ref())).collect();

    let owner = user(first.as_ref(), "owner").await;
    let outsider = user(first.as_ref(), "outsider").await;
    let mut authors = Vec::new();
    for i in 0..8 {
        authors.push(user(first.as_ref(), &format!("author{i}")).await);
    }
    let room = room(first.as_ref(), owner, authors.clone()).await;

    // 240 messages at once from 8 authors through every store, and among them, messages
    // from a non-member, which must take no seq.
    let total = 240;
    let sends = join_all((0..total).map(|n| {
        let store = stores[n % stores.len()];
        let author = authors[n % authors.len()];
        async move { stored(store.insert_message(message(room, author, n)).await).seq }
    }));
    let refused = join_all((0..24).map(|n| {
        let store = stores[n % stores.len()];
        async move { store.insert_message(message(room, outsider, 1000 + n)).await }
    }));
    let (mut seqs, refused) = tokio::join!(sends, refused);
    assert!(refused.iter().all(|r| matches!(r, Err(StoreError::NotMember))));
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=total as i64).collect::<Vec<_>>(), "every seq once, none left out");
    // An answer does not wait for its change's announcement (the SQLite writer's announcer
    // goes on beside it); closing a store waits until everything it committed is announced.
    for store in &stores {
        store.close().await;
    }

    let mut announced_anywhere = Vec::new();
    for saw in std::iter::once(&first_saw).chain(second.as_ref().map(|(_, saw)| saw)) {
        let saw = saw.lock().expect("not poisoned");
        assert!(
            saw.unseen.is_empty(),
            "announced before a reader could see them: {:?}",
            saw.unseen
        );
        let order = room_seqs(&saw.changes, room);
        assert!(order.windows(2).all(|w| w[0] < w[1]), "announced in seq order: {order:?}");
        announced_anywhere.extend(order);
    }
    announced_anywhere.sort_unstable();
    assert_eq!(announced_anywhere, seqs, "each change announced once, by the store that made it");
}

#[each_store(flavor = "multi_thread", worker_threads = 4)]
async fn nothing_a_member_sends_is_announced_after_their_removal() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let database = fresh_database().await;
    let (store, saw) = recorded(&database, data_dir.path(), None).await;
    let owner = user(store.as_ref(), "owner").await;
    let bob = user(store.as_ref(), "bob").await;
    for round in 0..5 {
        let room = room(store.as_ref(), owner, vec![bob]).await;
        let sends = join_all((0..60).map(|n| store.insert_message(message(room, bob, n))));
        let removal = async {
            // Let some of the sends go first.
            tokio::task::yield_now().await;
            store.remove_member(room, bob, owner).await.expect("removed")
        };
        let (sent, removed) = tokio::join!(sends, removal);
        assert!(removed);
        for result in &sent {
            assert!(matches!(result, Ok(Inserted::New(_)) | Err(StoreError::NotMember)));
        }
        let stored = sent.iter().filter(|r| r.is_ok()).count();
        // Answers do not wait for their announcements (the SQLite writer's announcer goes on
        // beside it): wait until this round's are made.
        let removed_bob = |c: &Change| matches!(c, Change::MemberRemoved { room_id, user_id } if *room_id == room && *user_id == bob);
        eventually("the round's changes announced", || async {
            let saw = saw.lock().expect("not poisoned");
            let all = saw.changes.iter().any(removed_bob)
                && room_seqs(&saw.changes, room).len() >= stored;
            all.then_some(())
        })
        .await;

        let saw = saw.lock().expect("not poisoned");
        let removal_at =
            saw.changes.iter().position(removed_bob).expect("the removal was announced");
        let late = saw.changes[removal_at..]
            .iter()
            .filter(|c| matches!(c, Change::MessageCreated(m) if m.room_id == room))
            .count();
        assert_eq!(late, 0, "round {round}: no message of bob's announced after his removal");
        let announced = room_seqs(&saw.changes, room).len();
        assert_eq!(stored, announced, "round {round}: every stored message was announced");
    }
    store.close().await;
}
