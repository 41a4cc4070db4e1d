//! Sending messages and reading history.

use serde::Deserialize;

use super::{App, not_member};
use crate::domain::{
    ClientId, Message, MessageBody, MessageId, RoomId, RoomKind, Timestamp, UserId, ValidationError,
};
use crate::error::{Error, Result};
use crate::store::{Inserted, MessagePage, NewMessage, Page, StoreError};

/// The most messages one history page returns.
pub const MAX_HISTORY_PAGE: u32 = 200;

/// Which window of a room's history to read, as the query string gives it.
#[derive(Debug, Default, Deserialize)]
pub struct HistoryQuery {
    /// Messages with a seq below this; the page ends right before it.
    pub before: Option<i64>,
    /// Messages with a seq above this; the page starts right after it.
    pub after: Option<i64>,
    /// 1 to 200; 50 when absent.
    pub limit: Option<u32>,
}

impl App {
    /// Stores a message; once it is durable the store announces it, which broadcasts it to
    /// the room. A send with a
    /// `client_id` this author already used in this room returns the stored message and
    /// stores nothing. Returns the message and whether it was stored now.
    pub async fn send_message(
        &self,
        author: UserId,
        room_id: RoomId,
        body: &str,
        client_id: Option<&str>,
    ) -> Result<(Message, bool)> {
        let body = MessageBody::parse(body)?;
        let client_id = client_id.map(ClientId::parse).transpose()?;
        let message = NewMessage {
            id: MessageId::generate(),
            room_id,
            author_id: author,
            body,
            client_id,
            created_at: Timestamp::now(),
        };
        match self.store().insert_message(message).await {
            Ok(Inserted::New(message)) => Ok((message, true)),
            Ok(Inserted::Existing(message)) => Ok((message, false)),
            Err(StoreError::NotMember) => Err(self.send_refusal(author, room_id).await),
            Err(other) => Err(other.into()),
        }
    }

    /// Why a send by a non-member fails: a public room exists for everyone, so joining is
    /// the remedy; any other room does not exist for this user.
    async fn send_refusal(&self, user: UserId, room_id: RoomId) -> Error {
        match self.store().room_access(room_id, user).await {
            Ok(Some(access)) if access.kind == RoomKind::Public => not_member(),
            Ok(_) => Error::NotFound("Room"),
            Err(error) => error.into(),
        }
    }

    /// Like [`App::send_message`], for a room id as the client wrote it.
    pub async fn send_message_to(
        &self,
        author: UserId,
        room_id: &str,
        body: &str,
        client_id: Option<&str>,
    ) -> Result<(Message, bool)> {
        let room_id: RoomId = room_id.parse().map_err(|_| Error::NotFound("Room"))?;
        self.send_message(author, room_id, body, client_id).await
    }

    /// A page of a room's history, oldest first. Members and, for public rooms, anyone
    /// signed in may read. Fetching counts as reading: a member's read marker moves up to
    /// the newest message fetched.
    pub async fn history(
        &self,
        viewer: UserId,
        room_id: &str,
        query: &HistoryQuery,
    ) -> Result<MessagePage> {
        let (room, access) = self.visible(viewer, room_id).await?;
        let limit = super::page_limit(query.limit, 50, MAX_HISTORY_PAGE)?;
        for (field, value) in [("before", query.before), ("after", query.after)] {
            if value.is_some_and(|seq| seq < 0) {
                let message = format!("{field} must be a seq, 0 or more.");
                return Err(ValidationError::new(field, "invalid_seq", message).into());
            }
        }
        let page = self
            .store()
            .messages(room, Page { before: query.before, after: query.after, limit })
            .await?;
        let newest = page.messages.last().map(|m| m.seq);
        if let (Some(newest), Some(last_read)) = (newest, access.last_read_seq) {
            if newest > last_read {
                self.mark_read_in_background(room, viewer, newest);
            }
        }
        Ok(page)
    }

    /// Moves a read marker without making the caller wait for the write to be durable: a
    /// marker lost to a crash only shows a message as unread again.
    fn mark_read_in_background(&self, room: RoomId, user: UserId, seq: i64) {
        let store = self.store().clone();
        tokio::spawn(async move {
            if let Err(error) = store.mark_read(room, user, seq).await {
                tracing::warn!(%error, %room, "could not move a read marker");
            }
        });
    }
}
