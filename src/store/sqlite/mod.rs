//! The embedded store: one SQLite database file in WAL mode.
//!
//! Reads run concurrently on a small pool of connections (WAL lets readers proceed while a
//! write is in progress). Every write is an operation (`ops`) queued to the one writer
//! (`writer`), a thread that owns the only writing connection and commits whatever is
//! waiting in one transaction: SQLite admits one writer at a time, and a queue is faster
//! and fairer than its busy handler.
//!
//! Durability: `synchronous=FULL`, so a commit returns only after its fsync, and a
//! confirmed message survives a power cut.

mod messages;
mod ops;
mod search;
mod skeletons;
mod writer;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, SqliteConnection};

use self::messages::{complete, message_in_room, message_select, messages_by_id};
use self::ops::{
    AddMember, ChangeAccount, CreateMedia, CreateRoom, CreateSession, CreateUser,
    DeleteExpiredSessions, DeleteMessage, DeleteSession, DeleteUnattachedMedia, EditMessage,
    InsertMessage, KeepSecret, LinkIdentity, MarkRead, OpenDm, PutFlow, React, RecordAdminAction,
    RemoveMember, SetBlock, TakeFlow, TouchLastSeen, UnlinkIdentity, UpdateProfile,
};
use self::writer::Writer;
use super::admin::{ACCOUNT_COLUMNS, AccountRow};
use super::rows::{IdentityRow, MediaRow, MemberRow, MessageRow, RoomRow, UserRow, parse_role};
use super::rules::{SHOWN_TO_MEMBER, prefix_range};
use super::{
    Account, AccountChange, AccountChanged, AddedBy, AdminAction, Candidates, ChangeSink,
    ChangeSpan, Changed, Credentials, Deleted, Inserted, Linked, MediaRecord, MemberRecord,
    MessagePage, NewIdentity, NewMedia, NewMessage, NewRoom, NewSession, NewUser, Page,
    PendingFlow, ProfileChange, Reacted, RoomAccess, SearchScope, SessionRecord, SignInMethods,
    SignInWays, Store, StoreError, StoreResult, Unlinked,
};
use crate::domain::search::SearchQuery;
use crate::domain::{
    Emoji, IdentityId, MediaId, Message, MessageBody, MessageId, Receipt, Room, RoomCursor, RoomId,
    RoomKind, SessionId, Timestamp, Unread, User, UserId, Username,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// How long a statement waits for a lock before failing. Only readers may meet one (the
/// writer is alone), and only while a checkpoint copies the log.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// How many prepared statements the writer keeps; more than it has.
const WRITE_STATEMENTS: usize = 128;

/// Readers in the pool. Each query is short; more connections than cores buys little.
const READ_CONNECTIONS: u32 = 4;

pub struct SqliteStore {
    /// Connections for reads; never used to write.
    read: SqlitePool,
    /// The queue of the writer, which owns the one writing connection.
    writer: Writer,
    /// This process's exclusive lock on the database, held while the store lives.
    _lock: std::fs::File,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file, applies pending migrations (and fills
    /// in the look-alike keys of names stored before them), and starts
    /// the writer, which announces every committed change to `sink`.
    pub async fn open(path: &Path, sink: ChangeSink) -> StoreResult<Self> {
        let lock = lock(path)?;
        let options = connect_options(path)?;
        let mut setup = options.clone().create_if_missing(true).connect().await?;
        MIGRATOR.run_direct(&mut setup).await?;
        skeletons::fill_in(&mut setup).await?;
        search::fill_in(&mut setup).await?;
        sqlx::Connection::close(setup).await?;
        let read = SqlitePoolOptions::new()
            .max_connections(READ_CONNECTIONS)
            .connect_with(options)
            .await?;
        let writer = Writer::start(write_connection(path)?, open(path)?, sink)?;
        Ok(Self { read, writer, _lock: lock })
    }
}

/// The writer's connection, with the settings of `connect_options`. It is opened after the
/// migrations, on a database that exists and is in WAL mode already.
///
/// Its temporary files are kept in memory: within a batch's transaction every statement that
/// may fail halfway (an insert with its trigger, say) journals the pages it is about to
/// change, so that it alone can be undone, and that statement journal is a temporary file.
/// On disk it cost a `pwrite` per page, a quarter of the writer's time under load; it never
/// outlives its statement, so its size is bounded by what one statement touches.
///
/// Its page cache stays at SQLite's 2 MiB: 16 MiB saved about 6 % of the server's time under
/// load (re-reading evicted pages from the file), and cost 14 MB of memory that a server
/// with little to write would hold for nothing.
fn write_connection(path: &Path) -> StoreResult<rusqlite::Connection> {
    let connection = open(path)?;
    connection
        .execute_batch(&format!(
            "PRAGMA journal_mode = WAL;
             PRAGMA foreign_keys = ON;
             PRAGMA secure_delete = ON;
             PRAGMA temp_store = MEMORY;
             PRAGMA wal_autocheckpoint = {};",
            writer::AUTOCHECKPOINT_PAGES
        ))
        .map_err(writer::backend)?;
    // Every statement the writer runs is prepared once and kept: a few dozen of them.
    connection.set_prepared_statement_cache_capacity(WRITE_STATEMENTS);
    Ok(connection)
}

/// A connection of the writer's own (rusqlite), to a database that exists: its own, or the
/// checkpointer's (whose checkpoints sync the database file before the log starts again).
fn open(path: &Path) -> StoreResult<rusqlite::Connection> {
    let connection = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(writer::backend)?;
    connection.busy_timeout(BUSY_TIMEOUT).map_err(writer::backend)?;
    connection.execute_batch("PRAGMA synchronous = FULL;").map_err(writer::backend)?;
    Ok(connection)
}

/// Creates the database file if needed and applies pending migrations (filling in what
/// SQL could not: look-alike keys).
pub async fn migrate(path: &Path) -> StoreResult<()> {
    let _lock = lock(path)?;
    let mut connection = connect_options(path)?.create_if_missing(true).connect().await?;
    MIGRATOR.run_direct(&mut connection).await?;
    skeletons::fill_in(&mut connection).await?;
    search::fill_in(&mut connection).await?;
    sqlx::Connection::close(connection).await?;
    Ok(())
}

/// Makes the database's files private to the server's user: the database is created 0600
/// before SQLite opens it (SQLite gives its `-wal` and `-shm` files the database's mode),
/// and the files of an earlier version lose any wider mode.
fn private_files(path: &Path) -> std::io::Result<()> {
    crate::private::file_options().write(true).create(true).truncate(false).open(path)?;
    let name = path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    for file in [name.clone(), format!("{name}-wal"), format!("{name}-shm")] {
        crate::private::narrow(&path.with_file_name(file), crate::private::FILE_MODE)?;
    }
    crate::private::narrow(&path.with_extension("lock"), crate::private::FILE_MODE)
}

/// Takes the exclusive lock on the database at `path` (a `.lock` file beside it, naming the
/// process that holds it), or says which process holds it. The operating system releases
/// it when the process ends, however it ends.
fn lock(path: &Path) -> StoreResult<std::fs::File> {
    use std::io::{Read, Seek, Write};
    let lock_path = path.with_extension("lock");
    let in_use = |detail: String| {
        StoreError::InUse(format!("cannot lock {}: {detail}", lock_path.display()))
    };
    let mut file = crate::private::file_options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(|error| in_use(error.to_string()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            let holder = if holder.is_empty() { "another process" } else { holder };
            return Err(StoreError::InUse(format!(
                "the data directory is in use by another Confab ({holder}): one embedded \
                 database serves one process; several nodes need PostgreSQL and Redis"
            )));
        }
        Err(std::fs::TryLockError::Error(error)) => return Err(in_use(error.to_string())),
    }
    private_files(path).map_err(|error| in_use(error.to_string()))?;
    let holder = format!("pid {}", std::process::id());
    let written = file
        .set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| file.write_all(holder.as_bytes()));
    written.map_err(|error| in_use(error.to_string()))?;
    Ok(file)
}

fn connect_options(path: &Path) -> StoreResult<SqliteConnectOptions> {
    Ok(SqliteConnectOptions::from_str("sqlite://")?
        .filename(path)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        // A deleted message must leave storage, not linger in freed pages.
        .pragma("secure_delete", "ON")
        .busy_timeout(BUSY_TIMEOUT)
        .log_statements(tracing::log::LevelFilter::Trace))
}

/// Unread messages and mentions of member `m` (with `m.user_id`, `m.last_read_seq`) in room
/// `r`: messages by others after the read marker that are not deleted.
const UNREAD_COLUMNS: &str = "
    (SELECT COUNT(*) FROM messages u
     WHERE u.room_id = r.id AND u.seq > m.last_read_seq AND u.author_id <> m.user_id
       AND u.deleted_at IS NULL) AS unread_count,
    (SELECT COUNT(*) FROM mentions x
     WHERE x.user_id = m.user_id AND x.room_id = r.id AND x.seq > m.last_read_seq)
        AS mention_count";

/// A member's read marker and what lies after it (`?1` the room, `?2` the user).
fn unread_query() -> String {
    format!(
        "SELECT m.last_read_seq, {UNREAD_COLUMNS}
         FROM memberships m JOIN rooms r ON r.id = m.room_id
         WHERE m.room_id = ?1 AND m.user_id = ?2"
    )
}

/// A member's read marker and what lies after it, as stored now; `None` if not a member.
async fn unread_of(
    db: &mut SqliteConnection,
    room: RoomId,
    user: UserId,
) -> sqlx::Result<Option<Unread>> {
    let row: Option<(i64, i64, i64)> = sqlx::query_as(&unread_query())
        .bind(room.as_i64())
        .bind(user.as_i64())
        .fetch_optional(&mut *db)
        .await?;
    Ok(row.map(|(last_read_seq, unread_count, mention_count)| Unread {
        last_read_seq,
        unread_count,
        mention_count,
    }))
}

/// The columns of a room as a viewer (`?1`) sees it; callers append WHERE and ORDER BY.
fn room_view_select() -> String {
    format!(
        "SELECT r.id, r.kind, r.name, r.created_by, r.created_at, r.last_seq,
                (SELECT COUNT(*) FROM memberships c WHERE c.room_id = r.id) AS member_count,
                m.role, m.added_by, m.last_read_seq, {UNREAD_COLUMNS},
                p.id AS peer_id, p.username AS peer_username,
                p.display_name AS peer_display_name, p.created_at AS peer_created_at,
                p.bio AS peer_bio, p.avatar AS peer_avatar,
                (SELECT x.id FROM messages x WHERE x.room_id = r.id ORDER BY x.seq DESC LIMIT 1)
                    AS lm_id
         FROM rooms r
         LEFT JOIN memberships m ON m.room_id = r.id AND m.user_id = ?1 AND {SHOWN_TO_MEMBER}
         LEFT JOIN dm_pairs d ON d.room_id = r.id
         LEFT JOIN users p ON p.id = CASE WHEN d.user_low = ?1 THEN d.user_high ELSE d.user_low END"
    )
}

const USER_COLUMNS: &str = "id, username, display_name, bio, avatar, created_at";

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    async fn close(&self) {
        self.writer.close().await;
        self.read.close().await;
    }

    async fn create_user(&self, user: NewUser) -> StoreResult<User> {
        self.writer.submit(CreateUser(user)).await
    }

    async fn user(&self, id: UserId) -> StoreResult<Option<User>> {
        let row: Option<UserRow> =
            sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"))
                .bind(id.as_i64())
                .fetch_optional(&self.read)
                .await?;
        Ok(row.map(UserRow::into_user))
    }

    async fn credentials(&self, username: &Username) -> StoreResult<Option<Credentials>> {
        #[derive(sqlx::FromRow)]
        struct Row {
            #[sqlx(flatten)]
            user: UserRow,
            password_hash: String,
            deactivated: bool,
        }
        let row: Option<Row> = sqlx::query_as(&format!(
            "SELECT {USER_COLUMNS}, password_hash, deactivated_at IS NOT NULL AS deactivated
             FROM users WHERE username = ?1"
        ))
        .bind(username.as_str())
        .fetch_optional(&self.read)
        .await?;
        Ok(row.map(|r| Credentials {
            user: r.user.into_user(),
            password_hash: r.password_hash,
            deactivated: r.deactivated,
        }))
    }

    async fn search_users(&self, prefix: &str, limit: u32) -> StoreResult<Vec<User>> {
        // Keys are stored in lower case: SQLite's own case folding covers only ASCII.
        let (low, high) = prefix_range(prefix);
        let rows: Vec<UserRow> = sqlx::query_as(&format!(
            "SELECT {USER_COLUMNS} FROM users
             WHERE (username >= ?1 AND username < ?2) OR (display_key >= ?1 AND display_key < ?2)
             ORDER BY username LIMIT ?3"
        ))
        .bind(&low)
        .bind(&high)
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        Ok(rows.into_iter().map(UserRow::into_user).collect())
    }

    async fn create_session(&self, session: NewSession) -> StoreResult<()> {
        self.writer.submit(CreateSession(session)).await
    }

    async fn session(
        &self,
        token_hash: &[u8; 32],
        now: Timestamp,
    ) -> StoreResult<Option<SessionRecord>> {
        #[derive(sqlx::FromRow)]
        struct Row {
            session_id: i64,
            expires_at: i64,
            is_admin: bool,
            #[sqlx(flatten)]
            user: UserRow,
        }
        let row: Option<Row> = sqlx::query_as(
            "SELECT s.id AS session_id, s.expires_at, u.id, u.username, u.display_name, u.bio,
                    u.avatar, u.created_at, u.is_admin
             FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.token_hash = ?1 AND s.expires_at > ?2 AND u.deactivated_at IS NULL",
        )
        .bind(&token_hash[..])
        .bind(now.as_millis())
        .fetch_optional(&self.read)
        .await?;
        Ok(row.map(|r| SessionRecord {
            id: SessionId::from_i64(r.session_id),
            user: r.user.into_user(),
            expires_at: Timestamp::from_millis(r.expires_at),
            admin: r.is_admin,
        }))
    }

    async fn delete_session(&self, token_hash: &[u8; 32]) -> StoreResult<bool> {
        self.writer.submit(DeleteSession(*token_hash)).await
    }

    async fn live_sessions(
        &self,
        sessions: &[SessionId],
        now: Timestamp,
    ) -> StoreResult<Vec<SessionId>> {
        let rows: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM sessions
             WHERE id IN (SELECT value FROM json_each(?1)) AND expires_at > ?2",
        )
        .bind(id_array(sessions.iter().map(|s| s.as_i64())))
        .bind(now.as_millis())
        .fetch_all(&self.read)
        .await?;
        Ok(rows.into_iter().map(SessionId::from_i64).collect())
    }

    async fn delete_expired_sessions(&self, now: Timestamp) -> StoreResult<u64> {
        self.writer.submit(DeleteExpiredSessions(now)).await
    }

    async fn secret(&self, name: &'static str, candidate: Vec<u8>) -> StoreResult<Vec<u8>> {
        self.writer.submit(KeepSecret { name, candidate }).await
    }

    async fn identity_user(&self, issuer: &str, subject: &str) -> StoreResult<Option<User>> {
        let row: Option<UserRow> = sqlx::query_as(&format!(
            "SELECT {USER_COLUMNS} FROM users
             WHERE id = (SELECT user_id FROM identities WHERE issuer = ?1 AND subject = ?2)"
        ))
        .bind(issuer)
        .bind(subject)
        .fetch_optional(&self.read)
        .await?;
        Ok(row.map(UserRow::into_user))
    }

    async fn sign_in_methods(&self, user: UserId) -> StoreResult<SignInMethods> {
        let rows: Vec<IdentityRow> = sqlx::query_as(
            "SELECT id, issuer, provider, email, created_at FROM identities
             WHERE user_id = ?1 ORDER BY created_at, id",
        )
        .bind(user.as_i64())
        .fetch_all(&self.read)
        .await?;
        let password: bool =
            sqlx::query_scalar("SELECT password_hash <> '' FROM users WHERE id = ?1")
                .bind(user.as_i64())
                .fetch_optional(&self.read)
                .await?
                .unwrap_or(false);
        Ok(SignInMethods {
            identities: rows.into_iter().map(IdentityRow::into_record).collect(),
            password,
        })
    }

    async fn link_identity(&self, user: UserId, identity: NewIdentity) -> StoreResult<Linked> {
        self.writer.submit(LinkIdentity { user, identity }).await
    }

    async fn unlink_identity(
        &self,
        user: UserId,
        identity: IdentityId,
        ways: SignInWays,
    ) -> StoreResult<Unlinked> {
        self.writer.submit(UnlinkIdentity { user, identity, ways }).await
    }

    async fn put_flow(&self, flow: PendingFlow) -> StoreResult<()> {
        self.writer.submit(PutFlow(flow)).await
    }

    async fn flow(
        &self,
        key_hash: [u8; 32],
        take: bool,
    ) -> StoreResult<Option<(String, Timestamp)>> {
        if take {
            return self.writer.submit(TakeFlow(key_hash)).await;
        }
        let row: Option<(String, i64)> =
            sqlx::query_as("SELECT flow, expires_at FROM sign_in_flows WHERE key_hash = ?1")
                .bind(&key_hash[..])
                .fetch_optional(&self.read)
                .await?;
        Ok(row.map(|(flow, expires_at)| (flow, Timestamp::from_millis(expires_at))))
    }

    async fn create_room(&self, room: NewRoom, members: Vec<UserId>) -> StoreResult<()> {
        self.writer.submit(CreateRoom { room, members }).await
    }

    async fn dm_room(
        &self,
        a: UserId,
        b: UserId,
        new_id: RoomId,
        now: Timestamp,
    ) -> StoreResult<(RoomId, bool)> {
        self.writer.submit(OpenDm { a, b, new_id, now }).await
    }

    async fn room(&self, room: RoomId, viewer: UserId) -> StoreResult<Option<Room>> {
        let rows: Vec<RoomRow> = sqlx::query_as(&format!("{} WHERE r.id = ?2", room_view_select()))
            .bind(viewer.as_i64())
            .bind(room.as_i64())
            .fetch_all(&self.read)
            .await?;
        Ok(self.complete_rooms(rows).await?.pop())
    }

    async fn user_rooms(&self, user: UserId) -> StoreResult<Vec<Room>> {
        // Most recently active first: by the newest message's time, else the room's.
        let rows: Vec<RoomRow> = sqlx::query_as(&format!(
            "{} WHERE m.user_id IS NOT NULL
             ORDER BY COALESCE((SELECT x.created_at FROM messages x
                                WHERE x.room_id = r.id ORDER BY x.seq DESC LIMIT 1),
                               r.created_at) DESC, r.id",
            room_view_select()
        ))
        .bind(user.as_i64())
        .fetch_all(&self.read)
        .await?;
        self.complete_rooms(rows).await
    }

    async fn public_rooms(
        &self,
        viewer: UserId,
        prefix: &str,
        limit: u32,
    ) -> StoreResult<Vec<Room>> {
        let (low, high) = prefix_range(prefix);
        let rows: Vec<RoomRow> = sqlx::query_as(&format!(
            "{} WHERE r.kind = 'public' AND r.name_key >= ?2 AND r.name_key < ?3
             ORDER BY r.name_key, r.id LIMIT ?4",
            room_view_select()
        ))
        .bind(viewer.as_i64())
        .bind(&low)
        .bind(&high)
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        self.complete_rooms(rows).await
    }

    async fn room_cursors(&self, user: UserId) -> StoreResult<Vec<RoomCursor>> {
        let rows: Vec<(i64, i64, i64, i64, i64)> = sqlx::query_as(&format!(
            "SELECT r.id, r.last_seq, m.last_read_seq, {UNREAD_COLUMNS}
             FROM memberships m JOIN rooms r ON r.id = m.room_id
             WHERE m.user_id = ?1 AND {SHOWN_TO_MEMBER}"
        ))
        .bind(user.as_i64())
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(room, last_seq, last_read_seq, unread_count, mention_count)| RoomCursor {
                room_id: RoomId::from_i64(room),
                last_seq,
                unread: Unread { last_read_seq, unread_count, mention_count },
            })
            .collect())
    }

    async fn member_rooms(&self, user: UserId) -> StoreResult<Vec<RoomId>> {
        let rooms: Vec<i64> = sqlx::query_scalar(&format!(
            "SELECT m.room_id FROM memberships m WHERE m.user_id = ?1 AND {SHOWN_TO_MEMBER}"
        ))
        .bind(user.as_i64())
        .fetch_all(&self.read)
        .await?;
        Ok(rooms.into_iter().map(RoomId::from_i64).collect())
    }

    async fn memberships(&self, users: &[UserId]) -> StoreResult<Vec<(UserId, RoomId)>> {
        let rows: Vec<(i64, i64)> = sqlx::query_as(&format!(
            "SELECT m.user_id, m.room_id FROM memberships m
             WHERE m.user_id IN (SELECT value FROM json_each(?1)) AND {SHOWN_TO_MEMBER}"
        ))
        .bind(id_array(users.iter().map(|u| u.as_i64())))
        .fetch_all(&self.read)
        .await?;
        Ok(rows.into_iter().map(|(u, r)| (UserId::from_i64(u), RoomId::from_i64(r))).collect())
    }

    async fn room_heads(&self, rooms: &[RoomId]) -> StoreResult<Vec<(RoomId, i64)>> {
        let rows: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT id, last_seq FROM rooms WHERE id IN (SELECT value FROM json_each(?1))",
        )
        .bind(id_array(rooms.iter().map(|r| r.as_i64())))
        .fetch_all(&self.read)
        .await?;
        Ok(rows.into_iter().map(|(r, seq)| (RoomId::from_i64(r), seq)).collect())
    }

    async fn room_access(&self, room: RoomId, user: UserId) -> StoreResult<Option<RoomAccess>> {
        let row: Option<(String, Option<String>)> = sqlx::query_as(&format!(
            "SELECT r.kind, m.role FROM rooms r
             LEFT JOIN memberships m ON m.room_id = r.id AND m.user_id = ?2 AND {SHOWN_TO_MEMBER}
             WHERE r.id = ?1"
        ))
        .bind(room.as_i64())
        .bind(user.as_i64())
        .fetch_optional(&self.read)
        .await?;
        let Some((kind, role)) = row else {
            return Ok(None);
        };
        let kind = RoomKind::from_stored(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("room kind {kind:?}")))?;
        let role = role.as_deref().map(parse_role).transpose()?;
        Ok(Some(RoomAccess { kind, role }))
    }

    async fn members(&self, room: RoomId) -> StoreResult<Vec<MemberRecord>> {
        let rows: Vec<MemberRow> = sqlx::query_as(
            "SELECT u.id, u.username, u.display_name, u.bio, u.avatar, u.created_at, u.last_seen_at,
                    m.role, m.joined_at, m.last_read_seq
             FROM memberships m JOIN users u ON u.id = m.user_id
             WHERE m.room_id = ?1 ORDER BY m.joined_at, u.id",
        )
        .bind(room.as_i64())
        .fetch_all(&self.read)
        .await?;
        rows.into_iter().map(MemberRow::into_member).collect()
    }

    async fn add_member(
        &self,
        room: RoomId,
        user: UserId,
        by: AddedBy,
        now: Timestamp,
    ) -> StoreResult<bool> {
        self.writer.submit(AddMember { room, user, by, now }).await
    }

    async fn remove_member(&self, room: RoomId, user: UserId, by: UserId) -> StoreResult<bool> {
        self.writer.submit(RemoveMember { room, user, by }).await
    }

    async fn insert_message(&self, message: NewMessage) -> StoreResult<Inserted> {
        let terms =
            search::message_terms(message.room_id, message.author_id, message.body.as_str());
        let insert = InsertMessage { message, terms, entry: None };
        self.writer.submit_then(insert, crate::store::order::placed).await
    }

    async fn messages(&self, room: RoomId, page: Page) -> StoreResult<MessagePage> {
        let limit = i64::from(page.limit);
        let before = page.before.unwrap_or(i64::MAX);
        let mut db = self.read.acquire().await?;
        // One row more than asked tells whether there are more.
        let mut rows: Vec<MessageRow> = match page.after {
            Some(after) => {
                sqlx::query_as(&format!(
                    "{}
                     WHERE m.room_id = ?1 AND m.seq > ?2 AND m.seq < ?3 ORDER BY m.seq ASC LIMIT ?4",
                    message_select()
                ))
                .bind(room.as_i64())
                .bind(after)
                .bind(before)
                .bind(limit + 1)
                .fetch_all(&mut *db)
                .await?
            }
            None => sqlx::query_as(&format!(
                "{} WHERE m.room_id = ?1 AND m.seq < ?2 ORDER BY m.seq DESC LIMIT ?3",
                message_select()
            ))
            .bind(room.as_i64())
            .bind(before)
            .bind(limit + 1)
            .fetch_all(&mut *db)
            .await?,
        };
        let has_more = rows.len() > page.limit as usize;
        rows.truncate(page.limit as usize);
        if page.after.is_none() {
            rows.reverse();
        }
        let messages = complete(&mut db, rows).await?.into_iter().map(|(_, m)| m).collect();
        Ok(MessagePage { messages, has_more })
    }

    async fn message(&self, room: RoomId, message: MessageId) -> StoreResult<Option<Message>> {
        let mut db = self.read.acquire().await?;
        Ok(message_in_room(&mut db, room, message).await?)
    }

    async fn search(
        &self,
        scope: SearchScope,
        query: &SearchQuery,
        below: Option<i64>,
        examine: u32,
    ) -> StoreResult<Candidates> {
        let mut db = self.read.acquire().await?;
        search::candidates(&mut db, scope, query, below, examine).await
    }

    async fn changes(&self, room: RoomId, span: ChangeSpan) -> StoreResult<Vec<Changed>> {
        let mut db = self.read.acquire().await?;
        let rows: Vec<MessageRow> = sqlx::query_as(&format!(
            "{}
             WHERE m.room_id = ?1 AND m.changed_seq > ?2 AND m.seq <= ?3
             ORDER BY m.changed_seq LIMIT ?4",
            message_select()
        ))
        .bind(room.as_i64())
        .bind(span.after)
        .bind(span.up_to)
        .bind(span.limit)
        .fetch_all(&mut *db)
        .await?;
        let changed = complete(&mut db, rows).await?;
        Ok(changed
            .into_iter()
            .map(|(changed_seq, message)| Changed { changed_seq, message })
            .collect())
    }

    async fn edit_message(
        &self,
        room: RoomId,
        message: MessageId,
        editor: UserId,
        body: MessageBody,
        now: Timestamp,
    ) -> StoreResult<Message> {
        let terms = search::message_terms(room, editor, body.as_str());
        self.writer.submit(EditMessage { room, message, editor, body, terms, now }).await
    }

    async fn delete_message(
        &self,
        room: RoomId,
        message: MessageId,
        by: UserId,
        now: Timestamp,
    ) -> StoreResult<Deleted> {
        self.writer.submit(DeleteMessage { room, message, by, now, as_admin: false }).await
    }

    async fn react(
        &self,
        room: RoomId,
        message: MessageId,
        user: UserId,
        emoji: Emoji,
        add: bool,
        now: Timestamp,
    ) -> StoreResult<Reacted> {
        self.writer.submit(React { room, message, user, emoji, add, now }).await
    }

    async fn mark_read(
        &self,
        room: RoomId,
        user: UserId,
        read: Option<i64>,
        delivered: Option<i64>,
    ) -> StoreResult<Option<Unread>> {
        self.writer.submit(MarkRead { room, user, read, delivered }).await
    }

    async fn unread(&self, room: RoomId, user: UserId) -> StoreResult<Unread> {
        let mut db = self.read.acquire().await?;
        unread_of(&mut db, room, user).await?.ok_or(StoreError::NotMember)
    }

    async fn receipts(&self, room: RoomId) -> StoreResult<Vec<Receipt>> {
        let rows: Vec<(i64, i64, i64)> = sqlx::query_as(
            "SELECT user_id, last_read_seq, delivered_seq FROM memberships WHERE room_id = ?1
             ORDER BY user_id",
        )
        .bind(room.as_i64())
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(user, read_seq, delivered_seq)| Receipt {
                user_id: UserId::from_i64(user),
                read_seq,
                delivered_seq,
            })
            .collect())
    }

    async fn touch_last_seen(&self, user: UserId, at: Timestamp) -> StoreResult<()> {
        self.writer.submit(TouchLastSeen { user, at }).await
    }

    async fn create_media(&self, media: NewMedia) -> StoreResult<()> {
        self.writer.submit(CreateMedia(media)).await
    }

    async fn media(&self, id: &MediaId) -> StoreResult<Option<MediaRecord>> {
        let row: Option<MediaRow> = sqlx::query_as(
            "SELECT uploader_id, kind, mime, name, size, has_thumbnail, room_id FROM media
             WHERE id = ?1",
        )
        .bind(id.as_str())
        .fetch_optional(&self.read)
        .await?;
        Ok(row.map(|row| row.into_record(id)))
    }

    async fn delete_unattached_media(&self, before: Timestamp) -> StoreResult<Vec<MediaId>> {
        self.writer.submit(DeleteUnattachedMedia(before)).await
    }

    async fn update_profile(
        &self,
        user: UserId,
        change: ProfileChange,
    ) -> StoreResult<(User, Option<String>)> {
        self.writer.submit(UpdateProfile { user, change }).await
    }

    async fn avatar(&self, user: UserId) -> StoreResult<Option<String>> {
        let avatar: Option<Option<String>> =
            sqlx::query_scalar("SELECT avatar FROM users WHERE id = ?1")
                .bind(user.as_i64())
                .fetch_optional(&self.read)
                .await?;
        Ok(avatar.flatten())
    }

    async fn block(&self, blocker: UserId, blocked: UserId, now: Timestamp) -> StoreResult<bool> {
        self.writer.submit(SetBlock { blocker, blocked, blocking: true, now }).await
    }

    async fn unblock(&self, blocker: UserId, blocked: UserId) -> StoreResult<bool> {
        let now = Timestamp::now();
        self.writer.submit(SetBlock { blocker, blocked, blocking: false, now }).await
    }

    async fn delete_message_as_admin(
        &self,
        room: RoomId,
        message: MessageId,
        admin: UserId,
        now: Timestamp,
    ) -> StoreResult<Deleted> {
        self.writer.submit(DeleteMessage { room, message, by: admin, now, as_admin: true }).await
    }

    async fn account(&self, user: UserId) -> StoreResult<Option<Account>> {
        let row: Option<AccountRow> =
            sqlx::query_as(&format!("SELECT {ACCOUNT_COLUMNS} FROM users WHERE id = ?1"))
                .bind(user.as_i64())
                .fetch_optional(&self.read)
                .await?;
        Ok(row.map(AccountRow::into_account))
    }

    async fn account_named(&self, username: &Username) -> StoreResult<Option<Account>> {
        let row: Option<AccountRow> =
            sqlx::query_as(&format!("SELECT {ACCOUNT_COLUMNS} FROM users WHERE username = ?1"))
                .bind(username.as_str())
                .fetch_optional(&self.read)
                .await?;
        Ok(row.map(AccountRow::into_account))
    }

    async fn accounts(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<Account>> {
        let (low, high) = prefix_range(prefix);
        let rows: Vec<AccountRow> = sqlx::query_as(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM users
             WHERE ((username >= ?1 AND username < ?2)
                    OR (display_key >= ?1 AND display_key < ?2))
               AND username > ?3
             ORDER BY username LIMIT ?4"
        ))
        .bind(&low)
        .bind(&high)
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        Ok(rows.into_iter().map(AccountRow::into_account).collect())
    }

    async fn change_account(
        &self,
        user: UserId,
        change: AccountChange,
    ) -> StoreResult<Option<AccountChanged>> {
        self.writer.submit(ChangeAccount { user, change }).await
    }

    async fn record_admin_action(&self, action: AdminAction) -> StoreResult<()> {
        self.writer.submit(RecordAdminAction(action)).await
    }

    async fn blocked_users(&self, blocker: UserId) -> StoreResult<Vec<User>> {
        let rows: Vec<UserRow> = sqlx::query_as(
            "SELECT u.id, u.username, u.display_name, u.bio, u.avatar, u.created_at
             FROM blocks b JOIN users u ON u.id = b.blocked
             WHERE b.blocker = ?1 ORDER BY b.created_at DESC, u.id",
        )
        .bind(blocker.as_i64())
        .fetch_all(&self.read)
        .await?;
        Ok(rows.into_iter().map(UserRow::into_user).collect())
    }
}

impl SqliteStore {
    /// Rooms from their rows, with their newest messages loaded whole in one go.
    async fn complete_rooms(&self, rows: Vec<RoomRow>) -> StoreResult<Vec<Room>> {
        let ids: Vec<i64> = rows.iter().filter_map(|r| r.lm_id).collect();
        let mut db = self.read.acquire().await?;
        let mut newest = messages_by_id(&mut db, &ids).await?;
        rows.into_iter().map(|row| row.into_room(&mut newest)).collect()
    }
}

/// Ids as a JSON array, for `json_each`: SQLite has no array parameters.
fn id_array(ids: impl Iterator<Item = i64>) -> String {
    let ids: Vec<String> = ids.map(|id| id.to_string()).collect();
    format!("[{}]", ids.join(","))
}
