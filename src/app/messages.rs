//! Sending messages and reading history.

use serde::Deserialize;

use super::{App, not_member};
use crate::domain::Unread;
use crate::domain::{
    ClientId, Emoji, MediaId, Message, MessageBody, MessageId, Receipt, RoomId, RoomKind,
    Timestamp, UserId, ValidationError,
};
use crate::error::{Error, Result};
use crate::limits::Action;
use crate::store::{Inserted, MAX_ATTACHMENTS, MessagePage, NewMessage, Page, StoreError};

/// The most messages one history page returns.
pub const MAX_HISTORY_PAGE: u32 = 200;

/// Which window of a room's history to read, as the query string gives it.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Messages with a seq below this; the page ends right before it.
    pub before: Option<i64>,
    /// Messages with a seq above this; the page starts right after it.
    pub after: Option<i64>,
    /// 1 to 200; 50 when absent.
    pub limit: Option<u32>,
}

/// A message as the client wrote it.
#[derive(Debug, Clone, Copy)]
pub struct Draft<'a> {
    pub body: &'a str,
    /// Makes retries safe: the same id from the same user in the same room is stored once.
    pub client_id: Option<&'a str>,
    /// A message of the same room this one answers.
    pub reply_to: Option<&'a str>,
    /// Files the author uploaded, to send with it (at most 10); the body may then be empty.
    pub attachments: &'a [String],
}

impl App {
    /// Stores a message; once it is durable the store announces it, which broadcasts it to
    /// the room. A send with a `client_id` this author already used in this room returns
    /// the stored message and stores nothing. Returns the message and whether it was
    /// stored now.
    pub async fn send_message(
        &self,
        author: UserId,
        room_id: &str,
        draft: Draft<'_>,
    ) -> Result<(Message, bool)> {
        let room_id: RoomId = room_id.parse().map_err(|_| Error::NotFound("Room"))?;
        let body = if draft.attachments.is_empty() {
            MessageBody::parse(draft.body)?
        } else {
            MessageBody::parse_or_empty(draft.body)?
        };
        let client_id = draft.client_id.map(ClientId::parse).transpose()?;
        let reply_to = draft.reply_to.map(parse_message_id).transpose()?;
        if draft.attachments.len() > MAX_ATTACHMENTS {
            return Err(ValidationError::new(
                "attachments",
                "too_many_attachments",
                "A message carries at most 10 files.",
            )
            .into());
        }
        let mut attachments = Vec::with_capacity(draft.attachments.len());
        for id in draft.attachments {
            let id = MediaId::parse(id).ok_or_else(unknown_attachment)?;
            if !attachments.contains(&id) {
                attachments.push(id);
            }
        }
        self.limit(Action::Message, author).await?;
        let message = NewMessage {
            id: MessageId::generate(),
            room_id,
            author_id: author,
            body,
            client_id,
            reply_to,
            attachments,
            created_at: Timestamp::now(),
        };
        match self.store().insert_message(message).await {
            Ok(Inserted::New(message)) => Ok((message, true)),
            Ok(Inserted::Existing(message)) => Ok((message, false)),
            Err(StoreError::NotMember) => Err(self.send_refusal(author, room_id).await),
            Err(StoreError::MessageNotFound) => Err(ValidationError::new(
                "reply_to",
                "unknown_message",
                "The message replied to is not in this room.",
            )
            .into()),
            Err(StoreError::AttachmentNotFound) => Err(unknown_attachment()),
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

    /// Replaces the body of one's own message; it keeps its seq and gains `edited_at`.
    pub async fn edit_message(
        &self,
        editor: UserId,
        room_id: &str,
        message_id: &str,
        body: &str,
    ) -> Result<Message> {
        let (room, _) = self.joined(editor, room_id).await?;
        let message = parse_message_id(message_id).map_err(|_| Error::NotFound("Message"))?;
        let body = MessageBody::parse(body)?;
        self.limit(Action::Message, editor).await?;
        Ok(self.store().edit_message(room, message, editor, body, Timestamp::now()).await?)
    }

    /// Deletes a message: one's own, or any in a group or public room one owns. The body
    /// leaves storage; a tombstone stays in history.
    pub async fn delete_message(
        &self,
        by: UserId,
        room_id: &str,
        message_id: &str,
    ) -> Result<Message> {
        let (room, _) = self.joined(by, room_id).await?;
        let message = parse_message_id(message_id).map_err(|_| Error::NotFound("Message"))?;
        self.limit(Action::Message, by).await?;
        let deleted = self.store().delete_message(room, message, by, Timestamp::now()).await?;
        self.erase_files(&deleted.media).await;
        Ok(deleted.message)
    }

    /// Adds or removes the caller's reaction; returns the message as it now stands.
    pub async fn react(
        &self,
        user: UserId,
        room_id: &str,
        message_id: &str,
        emoji: &str,
        add: bool,
    ) -> Result<Message> {
        let (room, _) = self.joined(user, room_id).await?;
        let message = parse_message_id(message_id).map_err(|_| Error::NotFound("Message"))?;
        let emoji = Emoji::parse(emoji)?;
        self.limit(Action::Reaction, user).await?;
        self.store().react(room, message, user, emoji, add, Timestamp::now()).await?;
        self.store().message(room, message).await?.ok_or(Error::NotFound("Message"))
    }

    /// Moves the caller's read marker (and so their delivered marker) up to `read`, and
    /// their delivered marker up to `delivered`; never back. Returns their counts.
    pub async fn mark_read(
        &self,
        user: UserId,
        room_id: &str,
        read: Option<i64>,
        delivered: Option<i64>,
    ) -> Result<Unread> {
        let (room, _) = self.joined(user, room_id).await?;
        check_seq("seq", read)?;
        check_seq("seq", delivered)?;
        match self.store().mark_read(room, user, read, delivered).await? {
            Some(unread) => Ok(unread),
            None => Ok(self.store().unread(room, user).await?),
        }
    }

    /// Every member's read and delivered markers in a room the caller is in.
    pub async fn receipts(&self, viewer: UserId, room_id: &str) -> Result<Vec<Receipt>> {
        let (room, _) = self.joined(viewer, room_id).await?;
        Ok(self.store().receipts(room).await?)
    }

    /// A page of a room's history, oldest first. Members and, for public rooms, anyone
    /// signed in may read. Reading is not marking read: only the client knows whether the
    /// user saw the page (it may be a prefetch), so it says so with `read`.
    pub async fn history(
        &self,
        viewer: UserId,
        room_id: &str,
        query: &HistoryQuery,
    ) -> Result<MessagePage> {
        let (room, _) = self.visible(viewer, room_id).await?;
        let limit = super::page_limit(query.limit, 50, MAX_HISTORY_PAGE)?;
        check_seq("before", query.before)?;
        check_seq("after", query.after)?;
        Ok(self
            .store()
            .messages(room, Page { before: query.before, after: query.after, limit })
            .await?)
    }
}

/// A message id from a client; one that does not parse names no message.
fn parse_message_id(text: &str) -> Result<MessageId> {
    text.parse().map_err(|_| {
        ValidationError::new("message_id", "unknown_message", "No such message in this room.")
            .into()
    })
}

fn unknown_attachment() -> Error {
    ValidationError::new(
        "attachments",
        "unknown_attachment",
        "Attach only files you uploaded and have not sent yet.",
    )
    .into()
}

/// A seq from a client: 0 or more.
fn check_seq(field: &'static str, seq: Option<i64>) -> Result<()> {
    match seq {
        Some(seq) if seq < 0 => Err(ValidationError::new(
            field,
            "invalid_seq",
            format!("{field} must be a seq, 0 or more."),
        )
        .into()),
        _ => Ok(()),
    }
}
