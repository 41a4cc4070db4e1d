//! Rooms, DMs and memberships. Every membership change locks its room's row first, so it
//! is ordered with the room's messages: a message checked against a membership commits
//! before that membership can change.

use async_trait::async_trait;

use super::super::gate::Gate;
use super::super::writes::{Done, Failed, Tx, Write};
use super::{
    blocks, dm_of, insert_membership, lock_pair, lock_room, refuse_if_blocked_by_any, refused,
    role_of,
};
use crate::domain::{RoomId, RoomRole, Timestamp, UserId};
use crate::store::driver::violated_unique;
use crate::store::rows::parse_role;
use crate::store::{AddedBy, Change, NewRoom, StoreError};

pub(in crate::store::postgres) struct CreateRoom {
    pub room: NewRoom,
    pub members: Vec<UserId>,
}

#[async_trait]
impl Write for CreateRoom {
    type Output = ();

    fn gate(&self) -> Gate {
        Gate::Room(self.room.id)
    }

    async fn apply(&mut self, tx: &mut Tx, changes: &mut Vec<Change>) -> Result<Done<()>, Failed> {
        let room = &self.room;
        refuse_if_blocked_by_any(tx.db(), &self.members, room.created_by).await?;
        let inserted = sqlx::query(
            "INSERT INTO rooms (id, kind, name, name_key, name_skeleton, created_by, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(room.id.as_i64())
        .bind(room.kind.as_str())
        .bind(room.name.as_str())
        .bind(room.name.as_str().to_lowercase())
        .bind(room.name_skeleton())
        .bind(room.created_by.as_i64())
        .bind(room.created_at.as_millis())
        .execute(tx.db())
        .await;
        match inserted {
            // The unique indexes decide, among public rooms: the name in lower case, and its
            // look-alike key.
            Err(e)
                if matches!(
                    violated_unique(&e),
                    Some("rooms_public_name" | "rooms_public_name_skeleton")
                ) =>
            {
                return Err(refused(StoreError::Conflict("room_name")));
            }
            other => other?,
        };
        let creator = std::iter::once((room.created_by, RoomRole::Owner, None));
        let others = self.members.iter().map(|&m| (m, RoomRole::Member, Some(room.created_by)));
        for (user, role, added_by) in creator.chain(others) {
            if insert_membership(tx.db(), room.id, user, role, added_by, room.created_at).await? {
                changes.push(Change::MemberAdded { room_id: room.id, user_id: user });
            }
        }
        Ok(Done::Commit(()))
    }
}

pub(in crate::store::postgres) struct OpenDm {
    pub a: UserId,
    pub b: UserId,
    pub new_id: RoomId,
    pub now: Timestamp,
}

impl OpenDm {
    fn pair(&self) -> (UserId, UserId) {
        if self.a <= self.b { (self.a, self.b) } else { (self.b, self.a) }
    }
}

#[async_trait]
impl Write for OpenDm {
    type Output = (RoomId, bool);

    fn gate(&self) -> Gate {
        Gate::Room(self.new_id)
    }

    /// Two requests for the same pair at once (from both people, on two nodes) both insert
    /// the pair; the primary key lets one through and makes the other wait for it to
    /// commit, find the pair taken, roll its room back and answer with the first one's.
    /// The pair's rows are locked first, so a block between them commits before this
    /// looks (and refuses) or after this commits (and hides the new DM).
    async fn apply(
        &mut self,
        tx: &mut Tx,
        changes: &mut Vec<Change>,
    ) -> Result<Done<(RoomId, bool)>, Failed> {
        let (low, high) = self.pair();
        lock_pair(tx.db(), low, high).await?;
        if blocks(tx.db(), self.b, self.a).await? {
            return Err(refused(StoreError::Blocked));
        }
        if blocks(tx.db(), self.a, self.b).await? {
            return Err(refused(StoreError::Blocking));
        }
        if let Some(room) = dm_of(tx.db(), low, high).await? {
            return Ok(Done::Rollback((room, false)));
        }
        let room = self.new_id;
        sqlx::query(
            "INSERT INTO rooms (id, kind, created_by, created_at) VALUES ($1, 'dm', $2, $3)",
        )
        .bind(room.as_i64())
        .bind(self.a.as_i64())
        .bind(self.now.as_millis())
        .execute(tx.db())
        .await?;
        let paired = sqlx::query(
            "INSERT INTO dm_pairs (user_low, user_high, room_id) VALUES ($1, $2, $3)
             ON CONFLICT (user_low, user_high) DO NOTHING",
        )
        .bind(low.as_i64())
        .bind(high.as_i64())
        .bind(room.as_i64())
        .execute(tx.db())
        .await?;
        if paired.rows_affected() == 0 {
            let Some(theirs) = dm_of(tx.db(), low, high).await? else {
                return Err(Failed::Retry);
            };
            return Ok(Done::Rollback((theirs, false)));
        }
        for user in [low, high] {
            if insert_membership(tx.db(), room, user, RoomRole::Member, None, self.now).await? {
                changes.push(Change::MemberAdded { room_id: room, user_id: user });
            }
        }
        Ok(Done::Commit((room, true)))
    }
}

pub(in crate::store::postgres) struct AddMember {
    pub room: RoomId,
    pub user: UserId,
    pub by: AddedBy,
    pub now: Timestamp,
}

#[async_trait]
impl Write for AddMember {
    type Output = bool;

    fn gate(&self) -> Gate {
        Gate::Room(self.room)
    }

    async fn apply(
        &mut self,
        tx: &mut Tx,
        changes: &mut Vec<Change>,
    ) -> Result<Done<bool>, Failed> {
        if lock_room(tx.db(), self.room).await?.is_none() {
            return Err(refused(StoreError::NotMember));
        }
        if let AddedBy::Member(by) = self.by {
            if role_of(tx.db(), self.room, by).await?.is_none() {
                return Err(refused(StoreError::NotMember));
            }
            refuse_if_blocked_by_any(tx.db(), &[self.user], by).await?;
        }
        let (user, added_by) = (self.user, self.by.adder());
        if !insert_membership(tx.db(), self.room, user, RoomRole::Member, added_by, self.now)
            .await?
        {
            return Ok(Done::Rollback(false));
        }
        changes.push(Change::MemberAdded { room_id: self.room, user_id: self.user });
        Ok(Done::Commit(true))
    }
}

pub(in crate::store::postgres) struct RemoveMember {
    pub room: RoomId,
    pub user: UserId,
    pub by: UserId,
}

#[async_trait]
impl Write for RemoveMember {
    type Output = bool;

    fn gate(&self) -> Gate {
        Gate::Room(self.room)
    }

    /// Under the room's lock, so that two members leaving at once (the owner and the one
    /// next in line, say) see each other's departure: the room keeps exactly one owner.
    async fn apply(
        &mut self,
        tx: &mut Tx,
        changes: &mut Vec<Change>,
    ) -> Result<Done<bool>, Failed> {
        if lock_room(tx.db(), self.room).await?.is_none() {
            return Err(refused(StoreError::NotMember));
        }
        match role_of(tx.db(), self.room, self.by).await? {
            None => return Err(refused(StoreError::NotMember)),
            Some(RoomRole::Member) if self.by != self.user => {
                return Err(refused(StoreError::NotOwner));
            }
            Some(_) => {}
        }
        let removed: Option<String> = sqlx::query_scalar(
            "DELETE FROM memberships WHERE room_id = $1 AND user_id = $2 RETURNING role",
        )
        .bind(self.room.as_i64())
        .bind(self.user.as_i64())
        .fetch_optional(tx.db())
        .await?;
        let Some(role) = removed else {
            return Ok(Done::Rollback(false));
        };
        if parse_role(&role)? == RoomRole::Owner {
            // The longest-standing remaining member becomes owner.
            sqlx::query(
                "UPDATE memberships SET role = 'owner'
                 WHERE room_id = $1 AND user_id = (
                     SELECT user_id FROM memberships WHERE room_id = $1
                     ORDER BY joined_at, user_id LIMIT 1)",
            )
            .bind(self.room.as_i64())
            .execute(tx.db())
            .await?;
        }
        changes.push(Change::MemberRemoved { room_id: self.room, user_id: self.user });
        Ok(Done::Commit(true))
    }
}
