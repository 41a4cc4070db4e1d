//! Every write the store makes, one [`Operation`] each, applied by the writer task inside
//! a batch's transaction.
//!
//! Each operation checks what it must (uniqueness, membership, ownership) inside the
//! transaction, so that a check and the write it guards cannot be separated by another
//! request; and it refuses before writing anything, so a refusal never leaves half a change.

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

/// Adds a membership, remembering who added the member (`None` for themself); false if it
/// existed. A new member has read everything before they joined: their read marker starts
/// at the room's last seq.
pub(super) async fn insert_membership(
    db: &mut SqliteConnection,
    room: RoomId,
    user: UserId,
    role: RoomRole,
    added_by: Option<UserId>,
    now: Timestamp,
) -> Result<bool, ApplyError> {
    let done = sqlx::query(
        "INSERT INTO memberships
             (room_id, user_id, role, joined_at, last_read_seq, delivered_seq, added_by)
         SELECT ?1, ?2, ?3, ?4, last_seq, last_seq, ?5 FROM rooms WHERE id = ?1
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

/// Whether `blocker` blocks `blocked`, as the transaction sees it.
pub(super) async fn blocks(
    db: &mut SqliteConnection,
    blocker: UserId,
    blocked: UserId,
) -> Result<bool, ApplyError> {
    let found: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM blocks WHERE blocker = ?1 AND blocked = ?2")
            .bind(blocker.as_i64())
            .bind(blocked.as_i64())
            .fetch_optional(&mut *db)
            .await?;
    Ok(found.is_some())
}

/// Refuses with `Blocked` if any of `users` blocks `actor`: someone who blocks a person is
/// not added to rooms by them.
pub(super) async fn refuse_if_blocked_by_any(
    db: &mut SqliteConnection,
    users: &[UserId],
    actor: UserId,
) -> Result<(), ApplyError> {
    for &user in users {
        if blocks(db, user, actor).await? {
            return Err(refused(StoreError::Blocked));
        }
    }
    Ok(())
}

/// The DM room of a pair of users, if they have one.
pub(super) async fn dm_of(
    db: &mut SqliteConnection,
    a: UserId,
    b: UserId,
) -> Result<Option<RoomId>, ApplyError> {
    let (low, high) = if a <= b { (a, b) } else { (b, a) };
    let room: Option<i64> =
        sqlx::query_scalar("SELECT room_id FROM dm_pairs WHERE user_low = ?1 AND user_high = ?2")
            .bind(low.as_i64())
            .bind(high.as_i64())
            .fetch_optional(&mut *db)
            .await?;
    Ok(room.map(RoomId::from_i64))
}
