//! Every write the store makes, one [`Operation`] each, applied by the writer's thread
//! inside a batch's transaction, on the connection it owns (rusqlite, each statement
//! prepared once and kept).
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
mod reads;
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

use rusqlite::types::FromSql;
use rusqlite::{Connection, OptionalExtension, Params, params};

use super::writer::ApplyError;
use crate::domain::{RoomId, RoomRole, Timestamp, Unread, UserId};
use crate::store::StoreError;
use crate::store::rows::parse_role;

pub(super) fn refused(error: StoreError) -> ApplyError {
    ApplyError::Refused(error)
}

/// Runs a statement (prepared once, kept by the connection); how many rows it changed.
pub(super) fn execute(
    db: &Connection,
    sql: &str,
    params: impl Params,
) -> Result<usize, ApplyError> {
    Ok(db.prepare_cached(sql)?.execute(params)?)
}

/// The first column of the first row a statement returns, if it returns one.
pub(super) fn optional<T: FromSql>(
    db: &Connection,
    sql: &str,
    params: impl Params,
) -> Result<Option<T>, ApplyError> {
    Ok(db.prepare_cached(sql)?.query_row(params, |row| row.get(0)).optional()?)
}

/// The first column of the one row a statement must return.
pub(super) fn one<T: FromSql>(
    db: &Connection,
    sql: &str,
    params: impl Params,
) -> Result<T, ApplyError> {
    Ok(db.prepare_cached(sql)?.query_row(params, |row| row.get(0))?)
}

/// The first column of every row a statement returns.
pub(super) fn column<T: FromSql>(
    db: &Connection,
    sql: &str,
    params: impl Params,
) -> Result<Vec<T>, ApplyError> {
    let mut statement = db.prepare_cached(sql)?;
    let rows = statement.query_map(params, |row| row.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Takes the room's next seq for a change.
pub(super) fn next_seq(db: &Connection, room: RoomId) -> Result<i64, ApplyError> {
    one(
        db,
        "UPDATE rooms SET last_seq = last_seq + 1 WHERE id = ?1 RETURNING last_seq",
        [room.as_i64()],
    )
}

/// A member's read marker and what lies after it, as stored now (the member's row is the
/// transaction's to read: it is one).
pub(super) fn unread_of(db: &Connection, room: RoomId, user: UserId) -> Result<Unread, ApplyError> {
    let found = db
        .prepare_cached(&super::unread_query())?
        .query_row([room.as_i64(), user.as_i64()], |row| {
            Ok(Unread {
                last_read_seq: row.get(0)?,
                unread_count: row.get(1)?,
                mention_count: row.get(2)?,
            })
        })
        .optional()?;
    found.ok_or_else(|| {
        ApplyError::Batch(StoreError::Corrupt(format!("member {user} of {room} vanished")))
    })
}

/// A user's role in a room, if a member.
pub(super) fn role_of(
    db: &Connection,
    room: RoomId,
    user: UserId,
) -> Result<Option<RoomRole>, ApplyError> {
    let role: Option<String> = optional(
        db,
        "SELECT role FROM memberships WHERE room_id = ?1 AND user_id = ?2",
        [room.as_i64(), user.as_i64()],
    )?;
    role.as_deref().map(parse_role).transpose().map_err(ApplyError::Batch)
}

/// Adds a membership, remembering who added the member (`None` for themself); false if it
/// existed. A new member has read everything before they joined: their read marker starts
/// at the room's last seq.
pub(super) fn insert_membership(
    db: &Connection,
    room: RoomId,
    user: UserId,
    role: RoomRole,
    added_by: Option<UserId>,
    now: Timestamp,
) -> Result<bool, ApplyError> {
    let inserted = execute(
        db,
        "INSERT INTO memberships
             (room_id, user_id, role, joined_at, last_read_seq, delivered_seq, added_by)
         SELECT ?1, ?2, ?3, ?4, last_seq, last_seq, ?5 FROM rooms WHERE id = ?1
         ON CONFLICT (room_id, user_id) DO NOTHING",
        params![
            room.as_i64(),
            user.as_i64(),
            role.as_str(),
            now.as_millis(),
            added_by.map(UserId::as_i64)
        ],
    )?;
    Ok(inserted == 1)
}

/// Whether `blocker` blocks `blocked`, as the transaction sees it.
pub(super) fn blocks(
    db: &Connection,
    blocker: UserId,
    blocked: UserId,
) -> Result<bool, ApplyError> {
    let found: Option<i64> = optional(
        db,
        "SELECT 1 FROM blocks WHERE blocker = ?1 AND blocked = ?2",
        [blocker.as_i64(), blocked.as_i64()],
    )?;
    Ok(found.is_some())
}

/// Refuses with `Blocked` if any of `users` blocks `actor`: someone who blocks a person is
/// not added to rooms by them.
pub(super) fn refuse_if_blocked_by_any(
    db: &Connection,
    users: &[UserId],
    actor: UserId,
) -> Result<(), ApplyError> {
    for &user in users {
        if blocks(db, user, actor)? {
            return Err(refused(StoreError::Blocked));
        }
    }
    Ok(())
}

/// The DM room of a pair of users, if they have one.
pub(super) fn dm_of(db: &Connection, a: UserId, b: UserId) -> Result<Option<RoomId>, ApplyError> {
    let (low, high) = if a <= b { (a, b) } else { (b, a) };
    let room: Option<i64> = optional(
        db,
        "SELECT room_id FROM dm_pairs WHERE user_low = ?1 AND user_high = ?2",
        [low.as_i64(), high.as_i64()],
    )?;
    Ok(room.map(RoomId::from_i64))
}
