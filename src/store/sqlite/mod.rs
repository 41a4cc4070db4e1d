//! The embedded store: one SQLite database file in WAL mode.
//!
//! Reads run concurrently on a small pool of connections (WAL lets readers proceed while a
//! write is in progress). Writes go through a single connection, because SQLite admits one
//! writer at a time and waiting on its busy handler is slower and less fair than a queue:
//! messages and read markers through the group-commit task in `writer`, the rarer account
//! and room changes by taking that connection's lock for one short transaction.
//!
//! Durability: `synchronous=FULL`, so a commit returns only after its fsync, and a
//! confirmed message survives a power cut.

mod rows;
mod writer;

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection, SqliteConnection};
use tokio::sync::{Mutex, mpsc};

use self::rows::{MemberRow, MessageRow, RoomRow, UserRow, parse_role};
use self::writer::{WriteOp, is_unique_violation_of, submit};
use super::{
    CommitHook, Credentials, Inserted, MessagePage, NewMessage, NewRoom, NewSession, NewUser, Page,
    RoomCursor, SessionRecord, Store, StoreError, StoreResult,
};
use crate::domain::{
    Member, Membership, Room, RoomId, RoomRole, SessionId, Timestamp, User, UserId, Username,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Readers in the pool. Each query is short; more connections than cores buys little.
const READ_CONNECTIONS: u32 = 4;

pub struct SqliteStore {
    /// Connections for reads; never used to write.
    read: SqlitePool,
    /// The one connection that writes. The group-commit task holds it for a batch; other
    /// writes take it for one transaction.
    write: Arc<Mutex<SqliteConnection>>,
    /// The group-commit task's queue.
    writer: mpsc::Sender<WriteOp>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and applies pending migrations.
    pub async fn open(path: &Path) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            .log_statements(tracing::log::LevelFilter::Trace);
        let mut write = options.clone().create_if_missing(true).connect().await?;
        MIGRATOR.run_direct(&mut write).await?;
        let read = SqlitePoolOptions::new()
            .max_connections(READ_CONNECTIONS)
            .connect_with(options)
            .await?;
        let write = Arc::new(Mutex::new(write));
        let (writer, queue) = mpsc::channel(writer::QUEUE_LEN);
        tokio::spawn(writer::run(write.clone(), queue));
        Ok(Self { read, write, writer })
    }
}

/// The columns of a room as a viewer (`?1`) sees it; callers append WHERE and ORDER BY.
const ROOM_VIEW_SELECT: &str = "
    SELECT r.id, r.kind, r.name, r.created_by, r.created_at, r.last_seq,
           (SELECT COUNT(*) FROM memberships c WHERE c.room_id = r.id) AS member_count,
           m.role, m.last_read_seq,
           CASE WHEN m.user_id IS NULL THEN NULL ELSE
               (SELECT COUNT(*) FROM messages u
                WHERE u.room_id = r.id AND u.seq > m.last_read_seq AND u.author_id <> ?1)
           END AS unread_count,
           p.id AS peer_id, p.username AS peer_username,
           p.display_name AS peer_display_name, p.created_at AS peer_created_at,
           lm.id AS lm_id, lm.seq AS lm_seq, lm.author_id AS lm_author_id,
           lm.body AS lm_body, lm.client_id AS lm_client_id, lm.created_at AS lm_created_at
    FROM rooms r
    LEFT JOIN memberships m ON m.room_id = r.id AND m.user_id = ?1
    LEFT JOIN dm_pairs d ON d.room_id = r.id
    LEFT JOIN users p ON p.id = CASE WHEN d.user_low = ?1 THEN d.user_high ELSE d.user_low END
    LEFT JOIN messages lm ON lm.room_id = r.id
        AND lm.seq = (SELECT MAX(x.seq) FROM messages x WHERE x.room_id = r.id)";

const USER_COLUMNS: &str = "id, username, display_name, created_at";
const MESSAGE_COLUMNS: &str = "id, room_id, seq, author_id, body, client_id, created_at";

/// A LIKE pattern matching strings that start with `prefix`, with `\` as the escape.
fn like_prefix(prefix: &str) -> String {
    let mut pattern = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    async fn create_user(&self, user: NewUser) -> StoreResult<User> {
        let mut write = self.write.lock().await;
        let inserted = sqlx::query(
            "INSERT INTO users (id, username, display_name, display_key, password_hash, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .bind(user.id.as_i64())
        .bind(user.username.as_str())
        .bind(user.display_name.as_str())
        .bind(user.display_name.as_str().to_lowercase())
        .bind(&user.password_hash)
        .bind(user.created_at.as_millis())
        .execute(&mut *write)
        .await;
        match inserted {
            Ok(_) => Ok(User {
                id: user.id,
                username: user.username,
                display_name: user.display_name,
                created_at: user.created_at,
            }),
            Err(e) if is_unique_violation_of(&e, "users.username") => {
                Err(StoreError::Conflict("username"))
            }
            Err(e) => Err(e.into()),
        }
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
        }
        let row: Option<Row> = sqlx::query_as(&format!(
            "SELECT {USER_COLUMNS}, password_hash FROM users WHERE username = ?1"
        ))
        .bind(username.as_str())
        .fetch_optional(&self.read)
        .await?;
        Ok(row.map(|r| Credentials { user: r.user.into_user(), password_hash: r.password_hash }))
    }

    async fn search_users(&self, prefix: &str, limit: u32) -> StoreResult<Vec<User>> {
        // Both sides in lower case: SQLite's own case folding covers only ASCII.
        let rows: Vec<UserRow> = sqlx::query_as(&format!(
            "SELECT {USER_COLUMNS} FROM users
             WHERE username LIKE ?1 ESCAPE '\\' OR display_key LIKE ?1 ESCAPE '\\'
             ORDER BY username LIMIT ?2"
        ))
        .bind(like_prefix(&prefix.to_lowercase()))
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        Ok(rows.into_iter().map(UserRow::into_user).collect())
    }

    async fn create_session(&self, session: NewSession) -> StoreResult<()> {
        let mut write = self.write.lock().await;
        sqlx::query(
            "INSERT INTO sessions (token_hash, id, user_id, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .bind(&session.token_hash[..])
        .bind(session.id.as_i64())
        .bind(session.user_id.as_i64())
        .bind(session.created_at.as_millis())
        .bind(session.expires_at.as_millis())
        .execute(&mut *write)
        .await?;
        Ok(())
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
            #[sqlx(flatten)]
            user: UserRow,
        }
        let row: Option<Row> = sqlx::query_as(
            "SELECT s.id AS session_id, s.expires_at, u.id, u.username, u.display_name, u.created_at
             FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.token_hash = ?1 AND s.expires_at > ?2",
        )
        .bind(&token_hash[..])
        .bind(now.as_millis())
        .fetch_optional(&self.read)
        .await?;
        Ok(row.map(|r| SessionRecord {
            id: SessionId::from_i64(r.session_id),
            user: r.user.into_user(),
            expires_at: Timestamp::from_millis(r.expires_at),
        }))
    }

    async fn delete_session(
        &self,
        token_hash: &[u8; 32],
    ) -> StoreResult<Option<(SessionId, UserId)>> {
        let mut write = self.write.lock().await;
        let row: Option<(i64, i64)> =
            sqlx::query_as("DELETE FROM sessions WHERE token_hash = ?1 RETURNING id, user_id")
                .bind(&token_hash[..])
                .fetch_optional(&mut *write)
                .await?;
        Ok(row.map(|(id, user)| (SessionId::from_i64(id), UserId::from_i64(user))))
    }

    async fn delete_expired_sessions(&self, now: Timestamp) -> StoreResult<u64> {
        let mut write = self.write.lock().await;
        let done = sqlx::query("DELETE FROM sessions WHERE expires_at <= ?1")
            .bind(now.as_millis())
            .execute(&mut *write)
            .await?;
        Ok(done.rows_affected())
    }

    async fn create_room(&self, room: NewRoom, members: &[UserId]) -> StoreResult<()> {
        let mut write = self.write.lock().await;
        let mut tx = write.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO rooms (id, kind, name, name_key, created_by, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .bind(room.id.as_i64())
        .bind(room.kind.as_str())
        .bind(room.name.as_str())
        .bind(room.name.as_str().to_lowercase())
        .bind(room.created_by.as_i64())
        .bind(room.created_at.as_millis())
        .execute(&mut *tx)
        .await;
        match inserted {
            Err(e) if is_unique_violation_of(&e, "rooms.name_key") => {
                return Err(StoreError::Conflict("room_name"));
            }
            other => other?,
        };
        insert_membership(&mut tx, room.id, room.created_by, RoomRole::Owner, room.created_at)
            .await?;
        for &member in members {
            insert_membership(&mut tx, room.id, member, RoomRole::Member, room.created_at).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn dm_room(
        &self,
        a: UserId,
        b: UserId,
        new_id: RoomId,
        now: Timestamp,
    ) -> StoreResult<(RoomId, bool)> {
        let (low, high) = if a <= b { (a, b) } else { (b, a) };
        let mut write = self.write.lock().await;
        let mut tx = write.begin().await?;
        let existing: Option<i64> = sqlx::query_scalar(
            "SELECT room_id FROM dm_pairs WHERE user_low = ?1 AND user_high = ?2",
        )
        .bind(low.as_i64())
        .bind(high.as_i64())
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(room) = existing {
            return Ok((RoomId::from_i64(room), false));
        }
        sqlx::query(
            "INSERT INTO rooms (id, kind, created_by, created_at) VALUES (?1, 'dm', ?2, ?3)",
        )
        .bind(new_id.as_i64())
        .bind(a.as_i64())
        .bind(now.as_millis())
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO dm_pairs (user_low, user_high, room_id) VALUES (?1, ?2, ?3)")
            .bind(low.as_i64())
            .bind(high.as_i64())
            .bind(new_id.as_i64())
            .execute(&mut *tx)
            .await?;
        insert_membership(&mut tx, new_id, low, RoomRole::Member, now).await?;
        insert_membership(&mut tx, new_id, high, RoomRole::Member, now).await?;
        tx.commit().await?;
        Ok((new_id, true))
    }

    async fn room(&self, room: RoomId, viewer: UserId) -> StoreResult<Option<Room>> {
        let row: Option<RoomRow> = sqlx::query_as(&format!("{ROOM_VIEW_SELECT} WHERE r.id = ?2"))
            .bind(viewer.as_i64())
            .bind(room.as_i64())
            .fetch_optional(&self.read)
            .await?;
        row.map(RoomRow::into_room).transpose()
    }

    async fn user_rooms(&self, user: UserId) -> StoreResult<Vec<Room>> {
        let rows: Vec<RoomRow> = sqlx::query_as(&format!(
            "{ROOM_VIEW_SELECT} WHERE m.user_id IS NOT NULL
             ORDER BY COALESCE(lm.created_at, r.created_at) DESC, r.id"
        ))
        .bind(user.as_i64())
        .fetch_all(&self.read)
        .await?;
        rows.into_iter().map(RoomRow::into_room).collect()
    }

    async fn public_rooms(
        &self,
        viewer: UserId,
        prefix: &str,
        limit: u32,
    ) -> StoreResult<Vec<Room>> {
        let rows: Vec<RoomRow> = sqlx::query_as(&format!(
            "{ROOM_VIEW_SELECT} WHERE r.kind = 'public' AND r.name_key LIKE ?2 ESCAPE '\\'
             ORDER BY r.name_key, r.id LIMIT ?3"
        ))
        .bind(viewer.as_i64())
        .bind(like_prefix(&prefix.to_lowercase()))
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        rows.into_iter().map(RoomRow::into_room).collect()
    }

    async fn room_cursors(&self, user: UserId) -> StoreResult<Vec<RoomCursor>> {
        let rows: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT r.id, r.last_seq FROM memberships m JOIN rooms r ON r.id = m.room_id
             WHERE m.user_id = ?1",
        )
        .bind(user.as_i64())
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(room, last_seq)| RoomCursor { room_id: RoomId::from_i64(room), last_seq })
            .collect())
    }

    async fn membership(&self, room: RoomId, user: UserId) -> StoreResult<Option<Membership>> {
        let row: Option<(String, i64)> = sqlx::query_as(
            "SELECT role, last_read_seq FROM memberships WHERE room_id = ?1 AND user_id = ?2",
        )
        .bind(room.as_i64())
        .bind(user.as_i64())
        .fetch_optional(&self.read)
        .await?;
        row.map(|(role, last_read_seq)| Ok(Membership { role: parse_role(&role)?, last_read_seq }))
            .transpose()
    }

    async fn members(&self, room: RoomId) -> StoreResult<Vec<Member>> {
        let rows: Vec<MemberRow> = sqlx::query_as(
            "SELECT u.id, u.username, u.display_name, u.created_at, m.role, m.joined_at
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
        role: RoomRole,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let mut write = self.write.lock().await;
        let mut tx = write.begin().await?;
        let added = insert_membership(&mut tx, room, user, role, now).await?;
        tx.commit().await?;
        Ok(added)
    }

    async fn remove_member(&self, room: RoomId, user: UserId) -> StoreResult<bool> {
        let mut write = self.write.lock().await;
        let mut tx = write.begin().await?;
        let removed: Option<String> = sqlx::query_scalar(
            "DELETE FROM memberships WHERE room_id = ?1 AND user_id = ?2 RETURNING role",
        )
        .bind(room.as_i64())
        .bind(user.as_i64())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(role) = removed else {
            return Ok(false);
        };
        if parse_role(&role)? == RoomRole::Owner {
            sqlx::query(
                "UPDATE memberships SET role = 'owner'
                 WHERE room_id = ?1 AND user_id = (
                     SELECT user_id FROM memberships WHERE room_id = ?1
                     ORDER BY joined_at, user_id LIMIT 1)",
            )
            .bind(room.as_i64())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn insert_message(
        &self,
        message: NewMessage,
        on_commit: CommitHook,
    ) -> StoreResult<Inserted> {
        submit(&self.writer, |reply| WriteOp::Message { message, on_commit, reply }).await
    }

    async fn messages(&self, room: RoomId, page: Page) -> StoreResult<MessagePage> {
        let limit = i64::from(page.limit);
        let before = page.before.unwrap_or(i64::MAX);
        // One row more than asked tells whether there are more.
        let mut rows: Vec<MessageRow> = match page.after {
            Some(after) => {
                sqlx::query_as(&format!(
                    "SELECT {MESSAGE_COLUMNS} FROM messages
                     WHERE room_id = ?1 AND seq > ?2 AND seq < ?3 ORDER BY seq ASC LIMIT ?4"
                ))
                .bind(room.as_i64())
                .bind(after)
                .bind(before)
                .bind(limit + 1)
                .fetch_all(&self.read)
                .await?
            }
            None => {
                sqlx::query_as(&format!(
                    "SELECT {MESSAGE_COLUMNS} FROM messages
                     WHERE room_id = ?1 AND seq < ?2 ORDER BY seq DESC LIMIT ?3"
                ))
                .bind(room.as_i64())
                .bind(before)
                .bind(limit + 1)
                .fetch_all(&self.read)
                .await?
            }
        };
        let has_more = rows.len() > page.limit as usize;
        rows.truncate(page.limit as usize);
        if page.after.is_none() {
            rows.reverse();
        }
        Ok(MessagePage {
            messages: rows.into_iter().map(MessageRow::into_message).collect(),
            has_more,
        })
    }

    async fn mark_read(&self, room: RoomId, user: UserId, seq: i64) -> StoreResult<()> {
        submit(&self.writer, |reply| WriteOp::MarkRead { room, user, seq, reply }).await
    }
}

/// Adds a membership inside a transaction; false if it existed.
async fn insert_membership(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    room: RoomId,
    user: UserId,
    role: RoomRole,
    now: Timestamp,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "INSERT INTO memberships (room_id, user_id, role, joined_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (room_id, user_id) DO NOTHING",
    )
    .bind(room.as_i64())
    .bind(user.as_i64())
    .bind(role.as_str())
    .bind(now.as_millis())
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

#[cfg(test)]
mod tests {
    use super::like_prefix;

    #[test]
    fn like_prefix_escapes_wildcards() {
        assert_eq!(like_prefix("a_b%c\\"), "a\\_b\\%c\\\\%");
    }
}
