//! Every write the store makes, one [`Operation`] each, applied by the writer task inside
//! a batch's transaction.
//!
//! Each operation checks what it must (uniqueness, membership, ownership) inside the
//! transaction, so that a check and the write it guards cannot be separated by another
//! request; and it refuses before writing anything, so a refusal never leaves half a change.

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

use sqlx::SqliteConnection;

use super::writer::ApplyError;
use crate::domain::{RoomId, RoomRole, Timestamp, Unread, UserId};
use crate::store::StoreError;
use crate::store::rows::parse_role;

pub(super) fn refused(error: StoreError) -> ApplyError {
    ApplyError::Refused(error)
}

/// Takes the room's next seq for a change.
pub(super) async fn next_seq(db: &mut SqliteConnection, room: RoomId) -> Result<i64, ApplyError> {
    Ok(sqlx::query_scalar(
        "UPDATE rooms SET last_seq = last_seq + 1 WHERE id = ?1 RETURNING last_seq",
    )
    .bind(room.as_i64())
    .fetch_one(&mut *db)
    .await?)
}

/// A member's read marker and what lies after it, as stored now (the member's row is the
/// transaction's to read: it is one).
pub(super) async fn unread_of(
    db: &mut SqliteConnection,
    room: RoomId,
    user: UserId,
) -> Result<Unread, ApplyError> {
    super::unread_of(db, room, user).await?.ok_or_else(|| {
        ApplyError::Batch(StoreError::Corrupt(format!("member {user} of {room} vanished")))
    })
}

/// A user's role in a room, if a member.
pub(super) async fn role_of(
    db: &mut SqliteConnection,
    room: RoomId,
    user: UserId,
) -> Result<Option<RoomRole>, ApplyError> {
    let role: Option<String> =
        sqlx::query_scalar("SELECT role FROM memberships WHERE room_id = ?1 AND user_id = ?2")
            .bind(room.as_i64())
            .bind(user.as_i64())
            .fetch_optional(&mut *db)
            .await?;
    role.as_deref().map(parse_role).transpose().map_err(ApplyError::Batch)
}

/// Adds a membership; false if it existed. A new member has read everything before they
/// joined: their read marker starts at the room's last seq.
pub(super) async fn insert_membership(
    db: &mut SqliteConnection,
    room: RoomId,
    user: UserId,
    role: RoomRole,
    now: Timestamp,
) -> Result<bool, ApplyError> {
    let done = sqlx::query(
        "INSERT INTO memberships (room_id, user_id, role, joined_at, last_read_seq, delivered_seq)
         SELECT ?1, ?2, ?3, ?4, last_seq, last_seq FROM rooms WHERE id = ?1
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
