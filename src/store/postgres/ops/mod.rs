//! Every write the PostgreSQL store makes, one [`Write`] each, in a transaction of its own.
//!
//! Many of these run at once, here and in other processes, so each takes the row locks
//! that keep what it checked true until it commits: a write to a room first locks the
//! room's row (taking a seq does, and so does every membership change), so a room's writes
//! run one after another and each sees the last one's effects (PostgreSQL's READ COMMITTED
//! gives every statement a fresh snapshot, so the checks after the lock see everything
//! committed before it). A refusal is an error, which rolls the whole transaction back, the
//! seq it took included.

mod accounts;
mod admin;
mod blocks;
mod identities;
mod markers;
mod media;
mod messages;
mod rooms;

pub(super) use accounts::{
    CreateSession, CreateUser, DeleteExpiredSessions, DeleteSession, KeepSecret, TouchLastSeen,
    UpdateProfile,
};
pub(super) use admin::{ChangeAccount, RecordAdminAction};
pub(super) use blocks::SetBlock;
pub(super) use identities::{LinkIdentity, PutFlow, TakeFlow, UnlinkIdentity};
pub(super) use markers::MarkRead;
pub(super) use media::{CreateMedia, DeleteUnattachedMedia};
pub(super) use messages::{DeleteMessage, EditMessage, InsertMessage, React};
pub(super) use rooms::{AddMember, CreateRoom, OpenDm, RemoveMember};

use sqlx::PgConnection;

use super::writes::Failed;
use crate::domain::{RoomId, RoomKind, RoomRole, Timestamp, UserId};
use crate::store::StoreError;
use crate::store::rows::parse_role;

fn refused(error: StoreError) -> Failed {
    Failed::Store(error)
}

/// Locks a room's row until the transaction ends, without taking a seq, and returns its
/// kind; `None` if there is no such room. The room's other writers wait for this one.
async fn lock_room(db: &mut PgConnection, room: RoomId) -> Result<Option<RoomKind>, Failed> {
    let kind: Option<String> =
        sqlx::query_scalar("SELECT kind FROM rooms WHERE id = $1 FOR UPDATE")
            .bind(room.as_i64())
            .fetch_optional(&mut *db)
            .await?;
    kind.map(|kind| {
        RoomKind::from_stored(&kind)
            .ok_or_else(|| refused(StoreError::Corrupt(format!("room kind {kind:?}"))))
    })
    .transpose()
}

/// A user's role in a room, if a member.
async fn role_of(
    db: &mut PgConnection,
    room: RoomId,
    user: UserId,
) -> Result<Option<RoomRole>, Failed> {
    let role: Option<String> =
        sqlx::query_scalar("SELECT role FROM memberships WHERE room_id = $1 AND user_id = $2")
            .bind(room.as_i64())
            .bind(user.as_i64())
            .fetch_optional(&mut *db)
            .await?;
    Ok(role.as_deref().map(parse_role).transpose()?)
}

/// Adds a membership, remembering who added the member (`None` for themself); false if it
/// existed. A new member has read everything before they joined: their read marker starts
/// at the room's last seq (exact: the caller holds the room's lock).
async fn insert_membership(
    db: &mut PgConnection,
    room: RoomId,
    user: UserId,
    role: RoomRole,
    added_by: Option<UserId>,
    now: Timestamp,
) -> Result<bool, Failed> {
    let done = sqlx::query(
        "INSERT INTO memberships
             (room_id, user_id, role, joined_at, last_read_seq, delivered_seq, added_by)
         SELECT $1, $2, $3, $4, last_seq, last_seq, $5 FROM rooms WHERE id = $1
         ON CONFLICT (room_id, user_id) DO NOTHING",
    )
    .bind(room.as_i64())
    .bind(user.as_i64())
    .bind(role.as_str())
    .bind(now.as_millis())
    .bind(added_by.map(UserId::as_i64))
    .execute(&mut *db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Whether `blocker` blocks `blocked`, as this statement sees it.
async fn blocks(db: &mut PgConnection, blocker: UserId, blocked: UserId) -> Result<bool, Failed> {
    let found: Option<i32> =
        sqlx::query_scalar("SELECT 1 FROM blocks WHERE blocker = $1 AND blocked = $2")
            .bind(blocker.as_i64())
            .bind(blocked.as_i64())
            .fetch_optional(&mut *db)
            .await?;
    Ok(found.is_some())
}

/// Refuses with `Blocked` if any of `users` blocks `actor`: someone who blocks a person is
/// not added to rooms by them.
async fn refuse_if_blocked_by_any(
    db: &mut PgConnection,
    users: &[UserId],
    actor: UserId,
) -> Result<(), Failed> {
    let users: Vec<i64> = users.iter().map(|u| u.as_i64()).collect();
    let found: Option<i32> =
        sqlx::query_scalar("SELECT 1 FROM blocks WHERE blocker = ANY($1) AND blocked = $2 LIMIT 1")
            .bind(&users)
            .bind(actor.as_i64())
            .fetch_optional(&mut *db)
            .await?;
    if found.is_some() { Err(refused(StoreError::Blocked)) } else { Ok(()) }
}

/// Locks a pair of users' rows until the transaction ends, so that a block between them
/// and the creation of their DM take turns: either the DM's creation sees the block, or the
/// block sees the DM and hides it. `NO KEY UPDATE`, so that messages and memberships, which
/// only reference the rows, never wait for it.
async fn lock_pair(db: &mut PgConnection, a: UserId, b: UserId) -> Result<(), Failed> {
    sqlx::query("SELECT id FROM users WHERE id IN ($1, $2) ORDER BY id FOR NO KEY UPDATE")
        .bind(a.as_i64())
        .bind(b.as_i64())
        .execute(&mut *db)
        .await?;
    Ok(())
}

/// The DM room of a pair of users, if they have one.
pub(super) async fn dm_of<'e>(
    db: impl sqlx::PgExecutor<'e>,
    a: UserId,
    b: UserId,
) -> Result<Option<RoomId>, sqlx::Error> {
    let (low, high) = if a <= b { (a, b) } else { (b, a) };
    let room: Option<i64> =
        sqlx::query_scalar("SELECT room_id FROM dm_pairs WHERE user_low = $1 AND user_high = $2")
            .bind(low.as_i64())
            .bind(high.as_i64())
            .fetch_optional(db)
            .await?;
    Ok(room.map(RoomId::from_i64))
}
