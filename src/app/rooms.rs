//! Rooms, groups and direct messages: creating them, joining, leaving, membership.
//!
//! Every membership change is announced by the store once committed (see `app::events`),
//! so that the member's open connections start or stop the room's events at once.

use std::collections::BTreeSet;

use super::App;
use crate::domain::{
    Member, Presence, PresenceStatus, Room, RoomId, RoomKind, RoomName, Timestamp, User, UserId,
    ValidationError,
};
use crate::error::{Error, Result};
use crate::limits::Action;
use crate::store::{AddedBy, NewRoom, StoreError};

/// The most members a room may be created with at once.
pub const MAX_INITIAL_MEMBERS: usize = 100;
/// The most rooms one directory page returns.
pub const MAX_DIRECTORY_PAGE: u32 = 200;

impl App {
    /// Creates a public room or a private group owned by `creator`, with `member_ids` as
    /// its first members.
    pub async fn create_room(
        &self,
        creator: &User,
        name: &str,
        kind: &str,
        member_ids: &[String],
    ) -> Result<Room> {
        let name = RoomName::parse(name)?;
        let kind = match kind {
            "public" => RoomKind::Public,
            "private" => RoomKind::Private,
            _ => {
                return Err(ValidationError::new(
                    "kind",
                    "invalid_room_kind",
                    "kind must be \"public\" or \"private\"; direct messages are opened with POST /dm/{user_id}.",
                )
                .into());
            }
        };
        let members = self.existing_users(member_ids, creator.id).await?;
        self.limit(Action::Room, creator.id).await?;
        if !members.is_empty() {
            self.limit_by(Action::Member, creator.id, members.len() as u64).await?;
        }
        let room_id = RoomId::generate();
        let new_room = NewRoom {
            id: room_id,
            kind,
            name,
            created_by: creator.id,
            created_at: Timestamp::now(),
        };
        match self.store().create_room(new_room, members).await {
            Err(StoreError::Conflict(_)) => {
                return Err(Error::conflict_on(
                    "name",
                    "room_name_taken",
                    "A public room with that name, or one that looks too much like it, exists.",
                ));
            }
            other => other?,
        }
        tracing::info!(%room_id, kind = kind.as_str(), "room created");
        self.room_for(creator.id, room_id).await
    }

    /// The caller's rooms, most recently active first.
    pub async fn rooms(&self, user: UserId) -> Result<Vec<Room>> {
        Ok(self.store().user_rooms(user).await?)
    }

    /// The directory of public rooms, filtered by a name prefix.
    pub async fn public_rooms(
        &self,
        viewer: UserId,
        prefix: &str,
        limit: Option<u32>,
    ) -> Result<Vec<Room>> {
        let limit = super::page_limit(limit, 100, MAX_DIRECTORY_PAGE)?;
        Ok(self.store().public_rooms(viewer, super::search_prefix(prefix)?, limit).await?)
    }

    /// A room the viewer may see: one they are in, or any public room.
    pub async fn room(&self, viewer: UserId, room_id: &str) -> Result<Room> {
        let (room, _) = self.visible(viewer, room_id).await?;
        self.room_for(viewer, room).await
    }

    /// Joins a public room. Joining a room one is already in succeeds and changes nothing;
    /// a DM is never joined, its members are fixed.
    pub async fn join(&self, user: UserId, room_id: &str) -> Result<Room> {
        let (room, access) = self.visible(user, room_id).await?;
        if access.kind == RoomKind::Dm {
            return Err(dm_members_fixed());
        }
        // `visible` admits non-members only to public rooms.
        if access.role.is_none() {
            self.limit(Action::Room, user).await?;
        }
        self.store().add_member(room, user, AddedBy::Themself, Timestamp::now()).await?;
        self.room_for(user, room).await
    }

    /// Leaves a room. If the owner leaves, the longest-standing member becomes owner.
    pub async fn leave(&self, user: UserId, room_id: &str) -> Result<()> {
        let room = self.changeable_membership(user, room_id).await?;
        self.store().remove_member(room, user, user).await?;
        Ok(())
    }

    /// Adds a user to a room the caller is a member of.
    pub async fn add_member(&self, caller: UserId, room_id: &str, user_id: &str) -> Result<Room> {
        let room = self.changeable_membership(caller, room_id).await?;
        let user: UserId = user_id.parse().map_err(|_| unknown_user("user_id"))?;
        if self.store().user(user).await?.is_none() {
            return Err(unknown_user("user_id"));
        }
        self.refuse_deactivated(user, "user_id").await?;
        self.limit(Action::Member, caller).await?;
        self.store().add_member(room, user, AddedBy::Member(caller), Timestamp::now()).await?;
        self.room_for(caller, room).await
    }

    /// Removes a member: the owner may remove anyone; anyone may remove themself.
    pub async fn remove_member(&self, caller: UserId, room_id: &str, user_id: &str) -> Result<()> {
        let room = self.changeable_membership(caller, room_id).await?;
        let user: UserId = user_id.parse().map_err(|_| Error::NotFound("Member"))?;
        let removed = self.store().remove_member(room, user, caller).await?;
        if removed { Ok(()) } else { Err(Error::NotFound("Member")) }
    }

    /// The members of a room the caller is in, with their presence and read markers.
    pub async fn members(&self, viewer: UserId, room_id: &str) -> Result<Vec<Member>> {
        let (room, _) = self.joined(viewer, room_id).await?;
        let records = self.store().members(room).await?;
        Ok(records
            .into_iter()
            .map(|record| {
                let status = self.hub().presence_of(record.user.id);
                let last_seen_at =
                    if status == PresenceStatus::Offline { record.last_seen_at } else { None };
                Member {
                    user: record.user,
                    role: record.role,
                    joined_at: record.joined_at,
                    presence: Presence { status, last_seen_at },
                    read_seq: record.read_seq,
                }
            })
            .collect())
    }

    /// The DM room between the caller and another user, created on first use. Returns the
    /// room and whether it was created now.
    pub async fn open_dm(&self, caller: UserId, other: &str) -> Result<(Room, bool)> {
        let other = self.user(other).await?.id;
        self.refuse_deactivated(other, "user_id").await?;
        self.limit(Action::Room, caller).await?;
        let (room_id, created) =
            self.store().dm_room(caller, other, RoomId::generate(), Timestamp::now()).await?;
        Ok((self.room_for(caller, room_id).await?, created))
    }

    /// A room the caller is in and whose membership can change (not a DM).
    async fn changeable_membership(&self, caller: UserId, room_id: &str) -> Result<RoomId> {
        let (room, access) = self.joined(caller, room_id).await?;
        if access.kind == RoomKind::Dm {
            return Err(dm_members_fixed());
        }
        Ok(room)
    }

    /// Parses and checks a list of user ids, dropping duplicates and `except`.
    async fn existing_users(&self, ids: &[String], except: UserId) -> Result<Vec<UserId>> {
        if ids.len() > MAX_INITIAL_MEMBERS {
            return Err(ValidationError::new(
                "member_ids",
                "too_many_members",
                "A room can be created with at most 100 members; add more afterwards.",
            )
            .into());
        }
        let mut users = BTreeSet::new();
        for id in ids {
            let id: UserId = id.parse().map_err(|_| unknown_user("member_ids"))?;
            if id != except && users.insert(id) {
                if self.store().user(id).await?.is_none() {
                    return Err(unknown_user("member_ids"));
                }
                self.refuse_deactivated(id, "member_ids").await?;
            }
        }
        Ok(users.into_iter().collect())
    }

    async fn room_for(&self, viewer: UserId, room_id: RoomId) -> Result<Room> {
        self.store().room(room_id, viewer).await?.ok_or(Error::NotFound("Room"))
    }
}

fn dm_members_fixed() -> Error {
    Error::conflict("dm_members_fixed", "A direct conversation's members cannot change.")
}

fn unknown_user(field: &'static str) -> Error {
    ValidationError::new(field, "unknown_user", "No such user.").into()
}
