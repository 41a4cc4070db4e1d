//! Blocking: a user stops hearing from another.
//!
//! While A blocks B, B cannot open a DM with A, send in their DM, nor add A to a room, and
//! A no longer sees their DM (it leaves A's room list and A's connections get
//! `room.removed`). Groups they share stay as they are: blocking is a private choice, not
//! moderation, and A still sees B's messages there (and B, A's). Unblocking brings
//! everything back. The store applies all of it, inside the writes it guards and in every
//! read of A's memberships; this layer only parses and checks who asks.

use super::App;
use crate::domain::{Timestamp, User, UserId, ValidationError};
use crate::error::Result;

impl App {
    /// The caller blocks a user; blocking them again changes nothing.
    pub async fn block(&self, caller: UserId, user_id: &str) -> Result<()> {
        let blocked = self.other_user(caller, user_id).await?;
        if self.store().block(caller, blocked, Timestamp::now()).await? {
            tracing::info!(%blocked, "user blocked");
        }
        Ok(())
    }

    /// The caller stops blocking a user; unblocking someone not blocked changes nothing.
    pub async fn unblock(&self, caller: UserId, user_id: &str) -> Result<()> {
        let blocked = self.other_user(caller, user_id).await?;
        if self.store().unblock(caller, blocked).await? {
            tracing::info!(%blocked, "user unblocked");
        }
        Ok(())
    }

    /// The users the caller blocks, most recently blocked first.
    pub async fn blocked_users(&self, caller: UserId) -> Result<Vec<User>> {
        Ok(self.store().blocked_users(caller).await?)
    }

    /// An existing user other than the caller.
    async fn other_user(&self, caller: UserId, user_id: &str) -> Result<UserId> {
        let user = self.user(user_id).await?.id;
        if user == caller {
            return Err(ValidationError::new(
                "user_id",
                "cannot_block_self",
                "You cannot block yourself.",
            )
            .into());
        }
        Ok(user)
    }
}
