//! Rooms, DMs and memberships.

use rusqlite::{Connection, params};

use super::super::writer::{ApplyError, Operation};
use super::{
    blocks, dm_of, execute, insert_membership, optional, refuse_if_blocked_by_any, refused, role_of,
};
use crate::domain::{RoomId, RoomRole, Timestamp, UserId};
use crate::store::rows::parse_role;
use crate::store::{AddedBy, Change, NewRoom, StoreError};

pub(in crate::store::sqlite) struct CreateRoom {
    pub room: NewRoom,
    pub members: Vec<UserId>,
}

impl Operation for CreateRoom {
    type Output = ();

    fn apply(&mut self, db: &Connection, changes: &mut Vec<Change>) -> Result<(), ApplyError> {
        let room = &self.room;
        // Before anything is written: a refusal creates nothing, not even the room.
        refuse_if_blocked_by_any(db, &self.members, room.created_by)?;
        // The unique indexes decide, among public rooms: the name in lower case, and its
        // look-alike key.
        let inserted = execute(
            db,
            "INSERT INTO rooms (id, kind, name, name_key, name_skeleton, created_by, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (name_key) WHERE kind = 'public' DO NOTHING
             ON CONFLICT (name_skeleton) WHERE kind = 'public' DO NOTHING",
            params![
                room.id.as_i64(),
                room.kind.as_str(),
                room.name.as_str(),
                room.name.as_str().to_lowercase(),
                room.name_skeleton(),
                room.created_by.as_i64(),
                room.created_at.as_millis(),
            ],
        )?;
        if inserted == 0 {
            return Err(refused(StoreError::Conflict("room_name")));
        }
        let creator = std::iter::once((room.created_by, RoomRole::Owner, None));
        let others = self.members.iter().map(|&m| (m, RoomRole::Member, Some(room.created_by)));
        for (user, role, added_by) in creator.chain(others) {
            if insert_membership(db, room.id, user, role, added_by, room.created_at)? {
                changes.push(Change::MemberAdded { room_id: room.id, user_id: user });
            }
        }
        Ok(())
    }
}

pub(in crate::store::sqlite) struct OpenDm {
    pub a: UserId,
    pub b: UserId,
    pub new_id: RoomId,
    pub now: Timestamp,
}

impl Operation for OpenDm {
    type Output = (RoomId, bool);

    fn apply(
        &mut self,
        db: &Connection,
        changes: &mut Vec<Change>,
    ) -> Result<(RoomId, bool), ApplyError> {
        let (low, high) = if self.a <= self.b { (self.a, self.b) } else { (self.b, self.a) };
        // Checked for an existing DM too: it is hidden from a blocker, and closed to the
        // one they block.
        if blocks(db, self.b, self.a)? {
            return Err(refused(StoreError::Blocked));
        }
        if blocks(db, self.a, self.b)? {
            return Err(refused(StoreError::Blocking));
        }
        if let Some(room) = dm_of(db, low, high)? {
            return Ok((room, false));
        }
        let room = self.new_id;
        execute(
            db,
            "INSERT INTO rooms (id, kind, created_by, created_at) VALUES (?1, 'dm', ?2, ?3)",
            [room.as_i64(), self.a.as_i64(), self.now.as_millis()],
        )?;
        execute(
            db,
            "INSERT INTO dm_pairs (user_low, user_high, room_id) VALUES (?1, ?2, ?3)",
            [low.as_i64(), high.as_i64(), room.as_i64()],
        )?;
        for user in [low, high] {
            if insert_membership(db, room, user, RoomRole::Member, None, self.now)? {
                changes.push(Change::MemberAdded { room_id: room, user_id: user });
            }
        }
        Ok((room, true))
    }
}

pub(in crate::store::sqlite) struct AddMember {
    pub room: RoomId,
    pub user: UserId,
    pub by: AddedBy,
    pub now: Timestamp,
}

impl Operation for AddMember {
    type Output = bool;

    fn apply(&mut self, db: &Connection, changes: &mut Vec<Change>) -> Result<bool, ApplyError> {
        if let AddedBy::Member(by) = self.by {
            if role_of(db, self.room, by)?.is_none() {
                return Err(refused(StoreError::NotMember));
            }
            refuse_if_blocked_by_any(db, &[self.user], by)?;
        }
        let added_by = self.by.adder();
        if !insert_membership(db, self.room, self.user, RoomRole::Member, added_by, self.now)? {
            return Ok(false);
        }
        changes.push(Change::MemberAdded { room_id: self.room, user_id: self.user });
        Ok(true)
    }
}

pub(in crate::store::sqlite) struct RemoveMember {
    pub room: RoomId,
    pub user: UserId,
    pub by: UserId,
}

impl Operation for RemoveMember {
    type Output = bool;

    fn apply(&mut self, db: &Connection, changes: &mut Vec<Change>) -> Result<bool, ApplyError> {
        match role_of(db, self.room, self.by)? {
            None => return Err(refused(StoreError::NotMember)),
            Some(RoomRole::Member) if self.by != self.user => {
                return Err(refused(StoreError::NotOwner));
            }
            Some(_) => {}
        }
        let removed: Option<String> = optional(
            db,
            "DELETE FROM memberships WHERE room_id = ?1 AND user_id = ?2 RETURNING role",
            [self.room.as_i64(), self.user.as_i64()],
        )?;
        let Some(role) = removed else {
            return Ok(false);
        };
        if parse_role(&role).map_err(ApplyError::Batch)? == RoomRole::Owner {
            execute(
                db,
                "UPDATE memberships SET role = 'owner'
                 WHERE room_id = ?1 AND user_id = (
                     SELECT user_id FROM memberships WHERE room_id = ?1
                     ORDER BY joined_at, user_id LIMIT 1)",
                [self.room.as_i64()],
            )?;
        }
        changes.push(Change::MemberRemoved { room_id: self.room, user_id: self.user });
        Ok(true)
    }
}
