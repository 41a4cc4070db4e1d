//! The PostgreSQL store, for communities that outgrow one machine: several Confab processes
//! may share one database.
//!
//! Reads run on a pool of connections, and writes on a pool of their own, so that no burst
//! of reads holds up a write. Each write is one transaction of its own (`writes`),
//! many at once; the operations in `ops` take the locks that keep their checks true until
//! they commit, and a room's seq comes from its row, locked by the write that takes it, so
//! a room's changes commit one after another, in seq order, whichever process makes them.
//!
//! Durability: PostgreSQL's own (`synchronous_commit` as the operator set it; with `on`,
//! the default, a confirmed message is on disk).
//!
//! Migrations (`migrations/postgres/`) are applied under an advisory lock, so that nodes
//! starting at once against an empty database do not race: one applies, the others wait
//! and find them applied.

mod erasure;
mod gate;
mod messages;
mod ops;
mod search;
mod skeletons;
mod writes;

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection};
use tokio_util::sync::CancellationToken;

use self::erasure::Eraser;
use self::messages::{complete, message_in_room, message_select, messages_by_id};
use self::ops::{
    AddMember, ChangeAccount, CreateMedia, CreateRoom, CreateSession, CreateUser,
    DeleteExpiredSessions, DeleteMessage, DeleteSession, DeleteUnattachedMedia, EditMessage,
    InsertMessage, KeepSecret, LinkIdentity, MarkRead, OpenDm, PutFlow, React, RecordAdminAction,
    RemoveMember, SetBlock, TakeFlow, TouchLastSeen, UnlinkIdentity, UpdateProfile,
};
use self::writes::Writes;
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

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Connections per process for writes. A write holds one from its first statement to its
/// commit, and PostgreSQL groups the commits of concurrent transactions into one flush, so
/// a dozen or two keep a node's writes flowing. Reads have a pool of their own
/// (`READ_CONNECTIONS`), so that reads, however many (5,000 clients coming back at once,
/// each reading its rooms and what it missed), never hold up a message on its way: with
/// one pool for both, such a storm delayed every confirmation, and so every delivery, by
/// 13 s (BENCHMARKS.md, "A reconnect storm"). Every node has both, and PostgreSQL's
/// `max_connections` (100 by default) must cover them all: three nodes fit.
const WRITE_CONNECTIONS: u32 = 16;

/// Connections per process for reads.
const READ_CONNECTIONS: u32 = 16;

/// How long a request waits for a connection before it is answered 503: long enough to
/// ride out a burst, short enough that an outage is reported rather than waited out.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest a statement may run; a request may take 30 s in all.
const STATEMENT_TIMEOUT: &str = "20s";

/// The longest a statement waits for a row lock (a room's, say) before it gives up with a
/// retryable error.
const LOCK_TIMEOUT: &str = "10s";

/// How long PostgreSQL keeps a transaction whose client has gone quiet: a node that dies
/// mid-transaction must not hold its room's lock until TCP notices, hours later. Confab
/// never waits between the statements of a transaction.
const IDLE_IN_TRANSACTION_TIMEOUT: &str = "15s";

/// How long opening the database at start may take: a host that drops packets must not
/// keep a starting node silent for minutes.
const OPEN_TIMEOUT: Duration = Duration::from_secs(30);

/// The oldest PostgreSQL served: `pg_current_xact_id` and `pg_xact_status` came in 13.
const MIN_SERVER_VERSION: i64 = 130_000;

pub struct PostgresStore {
    /// Connections for reads; the writes have their own (`writes`).
    pool: PgPool,
    writes: Writes,
    /// Stops the eraser at close.
    stopping: CancellationToken,
}

impl PostgresStore {
    /// Connects, applies pending migrations, and returns the store, which announces every
    /// committed change to `sink`.
    pub async fn open(url: &str, start_wait: Duration, sink: ChangeSink) -> StoreResult<Self> {
        migrate(url, start_wait).await?;
        let options = connect_options(url)?.options([
            ("statement_timeout", STATEMENT_TIMEOUT),
            ("lock_timeout", LOCK_TIMEOUT),
            ("idle_in_transaction_session_timeout", IDLE_IN_TRANSACTION_TIMEOUT),
        ]);
        let pool = |connections| {
            PgPoolOptions::new()
                .max_connections(connections)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_with(options.clone())
        };
        let (read, write) = (pool(READ_CONNECTIONS).await?, pool(WRITE_CONNECTIONS).await?);
        warn_unless_owner(&read).await?;
        let stopping = CancellationToken::new();
        // Erasure vacuums, which may take a while: on the readers' connections, not the
        // writers'.
        let eraser = Eraser::start(read.clone(), stopping.clone());
        Ok(Self { writes: Writes::new(write, sink, eraser), pool: read, stopping })
    }
}

/// Applies pending migrations and fills in what SQL could not (the look-alike keys of
/// names stored before them, `skeletons.rs`), and nothing else. Nodes starting at once
/// take turns under sqlx's advisory lock; a migration may take as long as it needs
/// (building an index on a large table, say), so this connection has no statement timeout.
/// While the database cannot be reached, it tries again for `start_wait`.
pub async fn migrate(url: &str, start_wait: Duration) -> StoreResult<()> {
    let mut connection = connect_at_start(&connect_options(url)?, start_wait).await?;
    check_server(&mut connection).await?;
    MIGRATOR.run_direct(&mut connection).await?;
    skeletons::fill_in(&mut connection).await?;
    search::fill_in(&mut connection).await?;
    connection.close().await?;
    Ok(())
}

/// A first connection, tried again while the database cannot be reached (refused, not
/// resolved, starting up: what a database started beside the node says for its first
/// seconds) until `start_wait` has passed; any other refusal (a wrong password, a missing
/// database) is final at once.
async fn connect_at_start(
    options: &PgConnectOptions,
    start_wait: Duration,
) -> StoreResult<PgConnection> {
    let deadline = tokio::time::Instant::now() + start_wait;
    let mut pause = Duration::from_millis(250);
    loop {
        let error = match tokio::time::timeout(OPEN_TIMEOUT, options.connect()).await {
            Ok(Ok(connection)) => return Ok(connection),
            Ok(Err(error)) => StoreError::from(error),
            Err(_) => StoreError::Unavailable("no answer within 30 s".into()),
        };
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if !matches!(error, StoreError::Unavailable(_)) || left.is_zero() {
            return Err(error);
        }
        pause = pause.min(left);
        tracing::warn!(
            %error,
            retry_in_ms = pause.as_millis() as u64,
            "the database cannot be reached yet; trying again"
        );
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}

fn connect_options(url: &str) -> StoreResult<PgConnectOptions> {
    let options = PgConnectOptions::from_str(url).map_err(|error| {
        // The parser's message may quote the URL, password and all.
        StoreError::Backend(format!("the database URL is not valid ({})", kind_of(&error)).into())
    })?;
    Ok(options.application_name("confab").log_statements(tracing::log::LevelFilter::Trace))
}

/// A parse error's kind, without its text.
fn kind_of(error: &sqlx::Error) -> &'static str {
    match error {
        sqlx::Error::Configuration(_) => "a setting is wrong",
        _ => "it does not parse",
    }
}

/// Says so at start if the tables belong to another role: only their owner may vacuum
/// them after deletions, and PostgreSQL skips them for anyone else with a mere warning.
async fn warn_unless_owner(pool: &PgPool) -> StoreResult<()> {
    let owner: Option<bool> = sqlx::query_scalar(
        "SELECT tableowner = current_user FROM pg_tables
         WHERE schemaname = current_schema() AND tablename = 'messages'",
    )
    .fetch_optional(pool)
    .await?;
    if owner == Some(false) {
        tracing::warn!(
            "the database role does not own Confab's tables: deleted messages' old row versions wait for autovacuum"
        );
    }
    Ok(())
}

/// Refuses a server too old for this store, or a database whose text is not UTF-8.
async fn check_server(connection: &mut PgConnection) -> StoreResult<()> {
    let (version, encoding): (String, String) = sqlx::query_as(
        "SELECT current_setting('server_version_num'), current_setting('server_encoding')",
    )
    .fetch_one(&mut *connection)
    .await?;
    if version.parse::<i64>().unwrap_or(0) < MIN_SERVER_VERSION {
        return Err(StoreError::Backend(
            format!("PostgreSQL 13 or newer is needed; this server is version {version}").into(),
        ));
    }
    if encoding != "UTF8" {
        return Err(StoreError::Backend(
            format!("the database must be encoded in UTF8, not {encoding}").into(),
        ));
    }
    Ok(())
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

/// A member's read marker and what lies after it, as stored now; `None` if not a member.
async fn unread_of(
    db: &mut PgConnection,
    room: RoomId,
    user: UserId,
) -> sqlx::Result<Option<Unread>> {
    let row: Option<(i64, i64, i64)> = sqlx::query_as(&format!(
        "SELECT m.last_read_seq, {UNREAD_COLUMNS}
         FROM memberships m JOIN rooms r ON r.id = m.room_id
         WHERE m.room_id = $1 AND m.user_id = $2"
    ))
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

/// The columns of a room as a viewer (`$1`) sees it; callers append WHERE and ORDER BY.
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
         LEFT JOIN memberships m ON m.room_id = r.id AND m.user_id = $1 AND {SHOWN_TO_MEMBER}
         LEFT JOIN dm_pairs d ON d.room_id = r.id
         LEFT JOIN users p ON p.id = CASE WHEN d.user_low = $1 THEN d.user_high ELSE d.user_low END"
    )
}

const USER_COLUMNS: &str = "id, username, display_name, bio, avatar, created_at";

#[async_trait]
impl Store for PostgresStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn close(&self) {
        self.writes.close().await;
        self.stopping.cancel();
        self.pool.close().await;
    }

    async fn create_user(&self, user: NewUser) -> StoreResult<User> {
        self.writes.submit(CreateUser(user)).await
    }

    async fn user(&self, id: UserId) -> StoreResult<Option<User>> {
        let row: Option<UserRow> =
            sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
                .bind(id.as_i64())
                .fetch_optional(&self.pool)
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
             FROM users WHERE username = $1"
        ))
        .bind(username.as_str())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| Credentials {
            user: r.user.into_user(),
            password_hash: r.password_hash,
            deactivated: r.deactivated,
        }))
    }

    async fn search_users(&self, prefix: &str, limit: u32) -> StoreResult<Vec<User>> {
        let (low, high) = prefix_range(prefix);
        let rows: Vec<UserRow> = sqlx::query_as(&format!(
            "SELECT {USER_COLUMNS} FROM users
             WHERE (username >= $1 AND username < $2) OR (display_key >= $1 AND display_key < $2)
             ORDER BY username LIMIT $3"
        ))
        .bind(&low)
        .bind(&high)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(UserRow::into_user).collect())
    }

    async fn create_session(&self, session: NewSession) -> StoreResult<()> {
        self.writes.submit(CreateSession(session)).await
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
             WHERE s.token_hash = $1 AND s.expires_at > $2 AND u.deactivated_at IS NULL",
        )
        .bind(&token_hash[..])
        .bind(now.as_millis())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| SessionRecord {
            id: SessionId::from_i64(r.session_id),
            user: r.user.into_user(),
            expires_at: Timestamp::from_millis(r.expires_at),
            admin: r.is_admin,
        }))
    }

    async fn delete_session(&self, token_hash: &[u8; 32]) -> StoreResult<bool> {
        self.writes.submit(DeleteSession(*token_hash)).await
    }

    async fn live_sessions(
        &self,
        sessions: &[SessionId],
        now: Timestamp,
    ) -> StoreResult<Vec<SessionId>> {
        let sessions: Vec<i64> = sessions.iter().map(|s| s.as_i64()).collect();
        let rows: Vec<i64> =
            sqlx::query_scalar("SELECT id FROM sessions WHERE id = ANY($1) AND expires_at > $2")
                .bind(&sessions)
                .bind(now.as_millis())
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(SessionId::from_i64).collect())
    }

    async fn delete_expired_sessions(&self, now: Timestamp) -> StoreResult<u64> {
        self.writes.submit(DeleteExpiredSessions(now)).await
    }

    async fn secret(&self, name: &'static str, candidate: Vec<u8>) -> StoreResult<Vec<u8>> {
        self.writes.submit(KeepSecret { name, candidate }).await
    }

    async fn identity_user(&self, issuer: &str, subject: &str) -> StoreResult<Option<User>> {
        let row: Option<UserRow> = sqlx::query_as(&format!(
            "SELECT {USER_COLUMNS} FROM users
             WHERE id = (SELECT user_id FROM identities WHERE issuer = $1 AND subject = $2)"
        ))
        .bind(issuer)
        .bind(subject)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(UserRow::into_user))
    }

    async fn sign_in_methods(&self, user: UserId) -> StoreResult<SignInMethods> {
        let rows: Vec<IdentityRow> = sqlx::query_as(
            "SELECT id, issuer, provider, email, created_at FROM identities
             WHERE user_id = $1 ORDER BY created_at, id",
        )
        .bind(user.as_i64())
        .fetch_all(&self.pool)
        .await?;
        let password: bool =
            sqlx::query_scalar("SELECT password_hash <> '' FROM users WHERE id = $1")
                .bind(user.as_i64())
                .fetch_optional(&self.pool)
                .await?
                .unwrap_or(false);
        Ok(SignInMethods {
            identities: rows.into_iter().map(IdentityRow::into_record).collect(),
            password,
        })
    }

    async fn link_identity(&self, user: UserId, identity: NewIdentity) -> StoreResult<Linked> {
        self.writes.submit(LinkIdentity { user, identity }).await
    }

    async fn unlink_identity(
        &self,
        user: UserId,
        identity: IdentityId,
        ways: SignInWays,
    ) -> StoreResult<Unlinked> {
        self.writes.submit(UnlinkIdentity { user, identity, ways }).await
    }

    async fn put_flow(&self, flow: PendingFlow) -> StoreResult<()> {
        self.writes.submit(PutFlow(flow)).await
    }

    async fn flow(
        &self,
        key_hash: [u8; 32],
        take: bool,
    ) -> StoreResult<Option<(String, Timestamp)>> {
        if take {
            return self.writes.submit(TakeFlow(key_hash)).await;
        }
        let row: Option<(String, i64)> =
            sqlx::query_as("SELECT flow, expires_at FROM sign_in_flows WHERE key_hash = $1")
                .bind(&key_hash[..])
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(flow, expires_at)| (flow, Timestamp::from_millis(expires_at))))
    }

    async fn create_room(&self, room: NewRoom, members: Vec<UserId>) -> StoreResult<()> {
        self.writes.submit(CreateRoom { room, members }).await
    }

    async fn dm_room(
        &self,
        a: UserId,
        b: UserId,
        new_id: RoomId,
        now: Timestamp,
    ) -> StoreResult<(RoomId, bool)> {
        self.writes.submit(OpenDm { a, b, new_id, now }).await
    }

    async fn room(&self, room: RoomId, viewer: UserId) -> StoreResult<Option<Room>> {
        let rows: Vec<RoomRow> = sqlx::query_as(&format!("{} WHERE r.id = $2", room_view_select()))
            .bind(viewer.as_i64())
            .bind(room.as_i64())
            .fetch_all(&self.pool)
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
        .fetch_all(&self.pool)
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
            "{} WHERE r.kind = 'public' AND r.name_key >= $2 AND r.name_key < $3
             ORDER BY r.name_key, r.id LIMIT $4",
            room_view_select()
        ))
        .bind(viewer.as_i64())
        .bind(&low)
        .bind(&high)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        self.complete_rooms(rows).await
    }

    async fn room_cursors(&self, user: UserId) -> StoreResult<Vec<RoomCursor>> {
        let rows: Vec<(i64, i64, i64, i64, i64)> = sqlx::query_as(&format!(
            "SELECT r.id, r.last_seq, m.last_read_seq, {UNREAD_COLUMNS}
             FROM memberships m JOIN rooms r ON r.id = m.room_id
             WHERE m.user_id = $1 AND {SHOWN_TO_MEMBER}"
        ))
        .bind(user.as_i64())
        .fetch_all(&self.pool)
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
            "SELECT m.room_id FROM memberships m WHERE m.user_id = $1 AND {SHOWN_TO_MEMBER}"
        ))
        .bind(user.as_i64())
        .fetch_all(&self.pool)
        .await?;
        Ok(rooms.into_iter().map(RoomId::from_i64).collect())
    }

    async fn memberships(&self, users: &[UserId]) -> StoreResult<Vec<(UserId, RoomId)>> {
        let users: Vec<i64> = users.iter().map(|u| u.as_i64()).collect();
        let rows: Vec<(i64, i64)> = sqlx::query_as(&format!(
            "SELECT m.user_id, m.room_id FROM memberships m
             WHERE m.user_id = ANY($1) AND {SHOWN_TO_MEMBER}"
        ))
        .bind(&users)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(u, r)| (UserId::from_i64(u), RoomId::from_i64(r))).collect())
    }

    async fn room_heads(&self, rooms: &[RoomId]) -> StoreResult<Vec<(RoomId, i64)>> {
        let rooms: Vec<i64> = rooms.iter().map(|r| r.as_i64()).collect();
        let rows: Vec<(i64, i64)> =
            sqlx::query_as("SELECT id, last_seq FROM rooms WHERE id = ANY($1)")
                .bind(&rooms)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(|(r, seq)| (RoomId::from_i64(r), seq)).collect())
    }

    async fn room_access(&self, room: RoomId, user: UserId) -> StoreResult<Option<RoomAccess>> {
        let row: Option<(String, Option<String>)> = sqlx::query_as(&format!(
            "SELECT r.kind, m.role FROM rooms r
             LEFT JOIN memberships m ON m.room_id = r.id AND m.user_id = $2 AND {SHOWN_TO_MEMBER}
             WHERE r.id = $1"
        ))
        .bind(room.as_i64())
        .bind(user.as_i64())
        .fetch_optional(&self.pool)
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
             WHERE m.room_id = $1 ORDER BY m.joined_at, u.id",
        )
        .bind(room.as_i64())
        .fetch_all(&self.pool)
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
        self.writes.submit(AddMember { room, user, by, now }).await
    }

    async fn remove_member(&self, room: RoomId, user: UserId, by: UserId) -> StoreResult<bool> {
        self.writes.submit(RemoveMember { room, user, by }).await
    }

    async fn insert_message(&self, message: NewMessage) -> StoreResult<Inserted> {
        let terms =
            search::message_terms(message.room_id, message.author_id, message.body.as_str());
        self.writes.submit_then(InsertMessage { message, terms }, crate::store::order::placed).await
    }

    async fn messages(&self, room: RoomId, page: Page) -> StoreResult<MessagePage> {
        let limit = i64::from(page.limit);
        let before = page.before.unwrap_or(i64::MAX);
        let mut db = self.pool.acquire().await?;
        // One row more than asked tells whether there are more.
        let mut rows: Vec<MessageRow> = match page.after {
            Some(after) => {
                sqlx::query_as(&format!(
                    "{}
                     WHERE m.room_id = $1 AND m.seq > $2 AND m.seq < $3 ORDER BY m.seq ASC LIMIT $4",
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
                "{} WHERE m.room_id = $1 AND m.seq < $2 ORDER BY m.seq DESC LIMIT $3",
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
        let mut db = self.pool.acquire().await?;
        Ok(message_in_room(&mut db, room, message).await?)
    }

    async fn search(
        &self,
        scope: SearchScope,
        query: &SearchQuery,
        below: Option<i64>,
        examine: u32,
    ) -> StoreResult<Candidates> {
        let mut db = self.pool.acquire().await?;
        search::candidates(&mut db, scope, query, below, examine).await
    }

    async fn changes(&self, room: RoomId, span: ChangeSpan) -> StoreResult<Vec<Changed>> {
        let mut db = self.pool.acquire().await?;
        let rows: Vec<MessageRow> = sqlx::query_as(&format!(
            "{}
             WHERE m.room_id = $1 AND m.changed_seq > $2 AND m.seq <= $3
             ORDER BY m.changed_seq LIMIT $4",
            message_select()
        ))
        .bind(room.as_i64())
        .bind(span.after)
        .bind(span.up_to)
        .bind(i64::from(span.limit))
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
        // Only the author edits: the editor's term is the author's.
        let terms = search::message_terms(room, editor, body.as_str());
        self.writes.submit(EditMessage { room, message, editor, body, terms, now }).await
    }

    async fn delete_message(
        &self,
        room: RoomId,
        message: MessageId,
        by: UserId,
        now: Timestamp,
    ) -> StoreResult<Deleted> {
        self.writes
            .submit(DeleteMessage { room, message, by, now, as_admin: false, erased_by: None })
            .await
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
        self.writes.submit(React { room, message, user, emoji, add, now }).await
    }

    async fn mark_read(
        &self,
        room: RoomId,
        user: UserId,
        read: Option<i64>,
        delivered: Option<i64>,
    ) -> StoreResult<Option<Unread>> {
        self.writes.submit(MarkRead::new(room, user, read, delivered)).await
    }

    async fn unread(&self, room: RoomId, user: UserId) -> StoreResult<Unread> {
        let mut db = self.pool.acquire().await?;
        unread_of(&mut db, room, user).await?.ok_or(StoreError::NotMember)
    }

    async fn receipts(&self, room: RoomId) -> StoreResult<Vec<Receipt>> {
        let rows: Vec<(i64, i64, i64)> = sqlx::query_as(
            "SELECT user_id, last_read_seq, delivered_seq FROM memberships WHERE room_id = $1
             ORDER BY user_id",
        )
        .bind(room.as_i64())
        .fetch_all(&self.pool)
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
        self.writes.submit(TouchLastSeen { user, at }).await
    }

    async fn create_media(&self, media: NewMedia) -> StoreResult<()> {
        self.writes.submit(CreateMedia(media)).await
    }

    async fn media(&self, id: &MediaId) -> StoreResult<Option<MediaRecord>> {
        let row: Option<MediaRow> = sqlx::query_as(
            "SELECT uploader_id, kind, mime, name, size, has_thumbnail, room_id FROM media
             WHERE id = $1",
        )
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|row| row.into_record(id)))
    }

    async fn delete_unattached_media(&self, before: Timestamp) -> StoreResult<Vec<MediaId>> {
        self.writes.submit(DeleteUnattachedMedia(before)).await
    }

    async fn update_profile(
        &self,
        user: UserId,
        change: ProfileChange,
    ) -> StoreResult<(User, Option<String>)> {
        self.writes.submit(UpdateProfile { user, change }).await
    }

    async fn avatar(&self, user: UserId) -> StoreResult<Option<String>> {
        let avatar: Option<Option<String>> =
            sqlx::query_scalar("SELECT avatar FROM users WHERE id = $1")
                .bind(user.as_i64())
                .fetch_optional(&self.pool)
                .await?;
        Ok(avatar.flatten())
    }

    async fn block(&self, blocker: UserId, blocked: UserId, now: Timestamp) -> StoreResult<bool> {
        let dm = self.dm_of(blocker, blocked).await?;
        self.writes.submit(SetBlock { blocker, blocked, blocking: true, dm, now }).await
    }

    async fn unblock(&self, blocker: UserId, blocked: UserId) -> StoreResult<bool> {
        let dm = self.dm_of(blocker, blocked).await?;
        let now = Timestamp::now();
        self.writes.submit(SetBlock { blocker, blocked, blocking: false, dm, now }).await
    }

    async fn delete_message_as_admin(
        &self,
        room: RoomId,
        message: MessageId,
        admin: UserId,
        now: Timestamp,
    ) -> StoreResult<Deleted> {
        self.writes
            .submit(DeleteMessage {
                room,
                message,
                by: admin,
                now,
                as_admin: true,
                erased_by: None,
            })
            .await
    }

    async fn account(&self, user: UserId) -> StoreResult<Option<Account>> {
        let row: Option<AccountRow> =
            sqlx::query_as(&format!("SELECT {ACCOUNT_COLUMNS} FROM users WHERE id = $1"))
                .bind(user.as_i64())
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(AccountRow::into_account))
    }

    async fn account_named(&self, username: &Username) -> StoreResult<Option<Account>> {
        let row: Option<AccountRow> =
            sqlx::query_as(&format!("SELECT {ACCOUNT_COLUMNS} FROM users WHERE username = $1"))
                .bind(username.as_str())
                .fetch_optional(&self.pool)
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
             WHERE ((username >= $1 AND username < $2)
                    OR (display_key >= $1 AND display_key < $2))
               AND username > $3
             ORDER BY username LIMIT $4"
        ))
        .bind(&low)
        .bind(&high)
        .bind(after.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(AccountRow::into_account).collect())
    }

    async fn change_account(
        &self,
        user: UserId,
        change: AccountChange,
    ) -> StoreResult<Option<AccountChanged>> {
        self.writes.submit(ChangeAccount { user, change }).await
    }

    async fn record_admin_action(&self, action: AdminAction) -> StoreResult<()> {
        self.writes.submit(RecordAdminAction(action)).await
    }

    async fn blocked_users(&self, blocker: UserId) -> StoreResult<Vec<User>> {
        let rows: Vec<UserRow> = sqlx::query_as(
            "SELECT u.id, u.username, u.display_name, u.bio, u.avatar, u.created_at
             FROM blocks b JOIN users u ON u.id = b.blocked
             WHERE b.blocker = $1 ORDER BY b.created_at DESC, u.id",
        )
        .bind(blocker.as_i64())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(UserRow::into_user).collect())
    }
}

impl PostgresStore {
    /// The DM room of a pair, read before a block or unblock so that the write can wait for
    /// the room's turn (a DM created meanwhile is found by the write itself).
    async fn dm_of(&self, a: UserId, b: UserId) -> StoreResult<Option<RoomId>> {
        Ok(self::ops::dm_of(&self.pool, a, b).await?)
    }

    /// Rooms from their rows, with their newest messages loaded whole in one go.
    async fn complete_rooms(&self, rows: Vec<RoomRow>) -> StoreResult<Vec<Room>> {
        let ids: Vec<i64> = rows.iter().filter_map(|r| r.lm_id).collect();
        let mut db = self.pool.acquire().await?;
        let mut newest = messages_by_id(&mut db, &ids).await?;
        rows.into_iter().map(|row| row.into_room(&mut newest)).collect()
    }
}
