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
mod markers;
mod media;
mod messages;
mod rooms;

pub(super) use accounts::{
    CreateSession, CreateUser, DeleteExpiredSessions, DeleteSession, KeepSecret, TouchLastSeen,
    UpdateProfile,
};
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

/// Adds a membership; false if it existed. A new member has read everything before they
/// joined: their read marker starts at the room's last seq (exact: the caller holds the
/// room's lock).
async fn insert_membership(
    db: &mut PgConnection,
    room: RoomId,
    user: UserId,
    role: RoomRole,
    now: Timestamp,
) -> Result<bool, Failed> {
    let done = sqlx::query(
        "INSERT INTO memberships (room_id, user_id, role, joined_at, last_read_seq, delivered_seq)
         SELECT $1, $2, $3, $4, last_seq, last_seq FROM rooms WHERE id = $1
         ON CONFLICT (room_id, user_id) DO NOTHING",
    )
    .bind(room.as_i64())
    .bind(user.as_i64())
    .bind(role.as_str())
    .bind(now.as_millis())
    .execute(&mut *db)
    .await?;
    Ok(done.rows_affected() == 1)
}
