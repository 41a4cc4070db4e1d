//! Persistence: the only part of the server that speaks SQL.
//!
//! [`Store`] is the narrow interface the application uses. Two databases implement it:
//! `sqlite`, the embedded default (one file, one writer thread with group commit), and
//! `postgres`, for communities that outgrow one machine (many concurrent transactions,
//! from several server processes). [`open`] picks one from the configuration. Nothing
//! above this module knows which one it has: not the driver's types, not its errors, not
//! its SQL.
//!
//! What both must do alike is written once: row decoding in `rows`, the rules applied
//! inside a write's transaction in `rules`, the meaning of the driver's errors in `driver`,
//! and how names stored before their look-alike keys get them in `skeletons`.
//!
//! Architecture invariant: a message's `seq` is assigned here, inside the transaction that
//! stores it. Every committed change that others must learn of (a message, a membership, an
//! ended session) is announced exactly once to the [`ChangeSink`] given at opening: after its
//! commit, each room's changes in commit (and so seq) order, and whether or not the caller
//! is still waiting. That is what lets the realtime layer promise gap-free, ordered
//! delivery.

mod admin;
mod driver;
pub mod order;
pub mod postgres;
mod rows;
mod rules;
mod search;
mod skeletons;
pub mod sqlite;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::config::Database;
use crate::domain::search::SearchQuery;
use crate::domain::{
    Bio, ClientId, DisplayName, Emoji, IdentityId, MediaId, MediaKind, Message, MessageBody,
    MessageId, Receipt, Room, RoomCursor, RoomId, RoomKind, RoomName, RoomRole, SessionId,
    Timestamp, Unread, User, UserId, Username,
};

pub use admin::{Account, AccountChange, AccountChanged, AdminAction};
pub use rules::MAX_REACTIONS_PER_MESSAGE;

/// The embedded database's file, in the data directory.
pub const SQLITE_FILE: &str = "confab.db";

/// Opens the configured database (applying pending migrations) and returns it as a
/// [`Store`] that announces every committed change to `sink`. A database server that
/// cannot be reached yet is tried again for `start_wait` (the embedded one is always there).
pub async fn open(
    database: &Database,
    data_dir: &Path,
    start_wait: Duration,
    sink: ChangeSink,
) -> StoreResult<Arc<dyn Store>> {
    Ok(match database {
        Database::Embedded => {
            Arc::new(sqlite::SqliteStore::open(&data_dir.join(SQLITE_FILE), sink).await?)
        }
        Database::Postgres(url) => {
            Arc::new(postgres::PostgresStore::open(url, start_wait, sink).await?)
        }
    })
}

/// Applies the configured database's pending migrations, and nothing else; waits for a
/// database server as [`open`] does.
pub async fn migrate(
    database: &Database,
    data_dir: &Path,
    start_wait: Duration,
) -> StoreResult<()> {
    match database {
        Database::Embedded => sqlite::migrate(&data_dir.join(SQLITE_FILE)).await,
        Database::Postgres(url) => postgres::migrate(url, start_wait).await,
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was broken; the name says which (`username`, `room_name`).
    #[error("unique constraint violated: {0}")]
    Conflict(&'static str),
    /// The actor is not a member of the room.
    #[error("not a member of the room")]
    NotMember,
    /// Only the room's owner may do this.
    #[error("not the room's owner")]
    NotOwner,
    /// No such message in that room.
    #[error("no such message")]
    MessageNotFound,
    /// Only the author may do this to a message.
    #[error("not the message's author")]
    NotAuthor,
    /// A file to attach is not the sender's, is attached already, or does not exist.
    #[error("no such file to attach")]
    AttachmentNotFound,
    /// The message is deleted; it cannot be edited, reacted to or replied to.
    #[error("the message is deleted")]
    MessageDeleted,
    /// A message has as many different reactions as it may.
    #[error("too many different reactions")]
    TooManyReactions,
    /// The other user blocks the actor: no DM with them, no adding them to a room.
    #[error("blocked by the other user")]
    Blocked,
    /// The actor blocks the other user, so a DM with them stays closed until unblocked.
    #[error("the actor blocks the other user")]
    Blocking,
    /// The store is shutting down and takes no more writes.
    #[error("the store is closed")]
    Closed,
    /// The database cannot be reached (or is starting, or shutting down). Worth retrying:
    /// a write that failed this way either committed or left nothing behind, and the
    /// caller cannot tell which, so retries must be idempotent (a message's client id).
    #[error("the database is unavailable: {0}")]
    Unavailable(Box<dyn std::error::Error + Send + Sync>),
    /// The transaction this write was part of failed and was rolled back; the cause is logged.
    #[error("write batch failed: {0}")]
    BatchFailed(String),
    /// A row that this code never writes (an unknown room kind, say).
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// Another process uses the embedded database (two processes on one data directory
    /// would each announce only their own writes: users of one would stop hearing the
    /// other's).
    #[error("{0}")]
    InUse(String),
    /// Anything else the database reported; the cause is kept for the log.
    #[error("database error: {0}")]
    Backend(Box<dyn std::error::Error + Send + Sync>),
}

/// A user account to create.
pub struct NewUser {
    pub id: UserId,
    pub username: Username,
    pub display_name: DisplayName,
    /// Empty for an account that signs in only through an identity provider.
    pub password_hash: String,
    pub created_at: Timestamp,
    /// The identity the account is made for, linked in the same transaction; refused
    /// with `Conflict("identity")` if it is linked already.
    pub identity: Option<NewIdentity>,
}

/// What a login checks: the user and their password hash (empty: no password).
pub struct Credentials {
    pub user: User,
    pub password_hash: String,
    /// The account is deactivated: no password lets it in.
    pub deactivated: bool,
}

/// An identity at an OpenID Connect provider to link to an account.
pub struct NewIdentity {
    pub id: IdentityId,
    /// The provider's issuer and the identity's `sub`: together, who it is.
    pub issuer: String,
    pub subject: String,
    /// The configured provider's id, to show the identity by.
    pub provider: String,
    /// An email the provider said was verified, to show; never used to find anyone.
    pub email: Option<String>,
    pub created_at: Timestamp,
}

/// A linked identity.
#[derive(Debug, Clone)]
pub struct IdentityRecord {
    pub id: IdentityId,
    pub issuer: String,
    pub provider: String,
    pub email: Option<String>,
    pub created_at: Timestamp,
}

/// How a user may sign in: their identities, and whether they have a password.
#[derive(Debug, Clone)]
pub struct SignInMethods {
    pub identities: Vec<IdentityRecord>,
    pub password: bool,
}

/// What linking an identity did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Linked {
    /// Linked now.
    Linked,
    /// It was linked to this user already.
    Already,
    /// It is linked to another user: nothing changed.
    Elsewhere,
}

/// What counts as a way to sign in when an identity is unlinked.
#[derive(Debug, Clone)]
pub struct SignInWays {
    /// A password counts (password login is on).
    pub password: bool,
    /// The ids of the providers configured now: only their identities count.
    pub providers: Vec<String>,
}

/// What unlinking an identity did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unlinked {
    Unlinked,
    /// The user has no such identity.
    NotFound,
    /// It is the user's last way to sign in: kept.
    LastWay,
}

/// A sign-in flow under way, or a sign-up waiting for its username (`app::sso`), as the
/// store keeps it: by the hash of the secret that finishes it.
pub struct PendingFlow {
    pub key_hash: [u8; 32],
    /// What the application needs to finish it, as JSON.
    pub flow: String,
    pub expires_at: Timestamp,
}

/// A session to store; the token itself is never stored, only its hash.
pub struct NewSession {
    pub id: SessionId,
    pub token_hash: [u8; 32],
    pub user_id: UserId,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// A live session found by its token.
pub struct SessionRecord {
    pub id: SessionId,
    pub user: User,
    pub expires_at: Timestamp,
    /// The user administers the server.
    pub admin: bool,
}

/// A public room or private group to create; its creator becomes owner.
pub struct NewRoom {
    pub id: RoomId,
    pub kind: RoomKind,
    pub name: RoomName,
    pub created_by: UserId,
    pub created_at: Timestamp,
}

impl NewRoom {
    /// The look-alike key its name is unique under: public rooms' only, since only their
    /// names must be told apart (groups may share names; DMs have none).
    fn name_skeleton(&self) -> Option<String> {
        (self.kind == RoomKind::Public).then(|| self.name.lookalike_key())
    }
}

/// A message to store. Its seq is assigned by the store.
pub struct NewMessage {
    pub id: MessageId,
    pub room_id: RoomId,
    pub author_id: UserId,
    pub body: MessageBody,
    pub client_id: Option<ClientId>,
    /// A message of the same room this one answers; refused if missing or deleted.
    pub reply_to: Option<MessageId>,
    /// Files the author uploaded and has not attached yet, in order.
    pub attachments: Vec<MediaId>,
    pub created_at: Timestamp,
}

/// The most files one message may carry.
pub const MAX_ATTACHMENTS: usize = 10;

/// An uploaded file to record; its bytes are in the blob store already.
pub struct NewMedia {
    pub id: MediaId,
    pub uploader: UserId,
    pub kind: MediaKind,
    pub mime: String,
    pub name: String,
    pub size: u64,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub duration_ms: Option<u64>,
    pub has_thumbnail: bool,
    pub created_at: Timestamp,
}

/// A recorded file and where it belongs.
#[derive(Debug, Clone)]
pub struct MediaRecord {
    pub id: MediaId,
    pub uploader: UserId,
    pub kind: MediaKind,
    pub mime: String,
    pub name: String,
    pub size: u64,
    pub has_thumbnail: bool,
    /// The room of the message that carries it; `None` while unattached.
    pub room: Option<RoomId>,
}

/// A tombstone and the files that went with the message.
pub struct Deleted {
    pub message: Message,
    /// Files whose records were removed; their bytes are the caller's to remove.
    pub media: Vec<MediaId>,
}

/// Changes to a profile; `None` leaves a part as it is.
#[derive(Default)]
pub struct ProfileChange {
    pub display_name: Option<DisplayName>,
    pub bio: Option<Bio>,
    /// `Some(None)` removes the avatar; `Some(Some(key))` sets a new one.
    pub avatar: Option<Option<String>>,
}

/// The outcome of storing a message.
pub enum Inserted {
    /// Stored now, under a new seq.
    New(Message),
    /// A message with the same author, room and client id was stored before; this is it.
    Existing(Message),
}

/// A committed change that connections must learn of.
#[derive(Debug, Clone)]
pub enum Change {
    /// A message was stored under a new seq.
    MessageCreated(Message),
    /// A message's body was edited; `seq` is the change's.
    MessageEdited { seq: i64, message: Message },
    /// A message became a tombstone; `seq` is the change's.
    MessageDeleted { seq: i64, message: Message },
    /// A reaction was added or removed; `seq` is the change's.
    ReactionChanged {
        room_id: RoomId,
        seq: i64,
        message_id: MessageId,
        emoji: Emoji,
        user_id: UserId,
        added: bool,
    },
    /// A message (new or edited) mentions a member who was not mentioned in it before.
    Mentioned { user_id: UserId, message: Message },
    /// A member's read or delivered marker rose; `unread` holds their counts as of this
    /// change if the read marker moved.
    MarkersMoved { room_id: RoomId, receipt: Receipt, unread: Option<Unread> },
    /// A user became a member of a room.
    MemberAdded { room_id: RoomId, user_id: UserId },
    /// A user stopped being a member of a room.
    MemberRemoved { room_id: RoomId, user_id: UserId },
    /// A DM left its member's view (they blocked the other) or came back (they unblocked):
    /// their connections drop it or take it up, and the other member learns nothing.
    DmHidden { room_id: RoomId, user_id: UserId, hidden: bool },
    /// A session was ended by a logout.
    SessionEnded { session_id: SessionId, user_id: UserId },
    /// A user's profile changed; `rooms` are the rooms they are in.
    ProfileChanged { user: User, rooms: Vec<RoomId> },
}

/// Receives every committed [`Change`], in commit order. Called by the store's writer; it
/// must not block (handing the change to the bus is the intended use).
pub type ChangeSink = Arc<dyn Fn(&Change) + Send + Sync>;

/// Who may see a room and how, for permission checks.
#[derive(Debug, Clone, Copy)]
pub struct RoomAccess {
    pub kind: RoomKind,
    /// The user's role, if a member.
    pub role: Option<RoomRole>,
}

/// What a block or an unblock announces: the DM leaving the blocker's view, or coming
/// back, so that open connections drop or take it up like a membership (the other member
/// is told nothing).
pub(crate) fn block_change(blocking: bool, room_id: RoomId, blocker: UserId) -> Change {
    Change::DmHidden { room_id, user_id: blocker, hidden: blocking }
}

/// Who adds a member to a room.
#[derive(Debug, Clone, Copy)]
pub enum AddedBy {
    /// The user joins by themself (a public room; the caller checked).
    Themself,
    /// A member adds them; refused with `NotMember` if `by` is not (or no longer) one, and
    /// with `Blocked` if the user blocks `by`. Remembered as the membership's `added_by`.
    Member(UserId),
}

impl AddedBy {
    /// The adder to remember, if someone else added the member.
    pub fn adder(self) -> Option<UserId> {
        match self {
            Self::Themself => None,
            Self::Member(by) => Some(by),
        }
    }
}

/// A window of a room's messages, by seq.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    /// Only messages with a seq below this.
    pub before: Option<i64>,
    /// Only messages with a seq above this. With `after`, the page starts right after it;
    /// without, the page ends right before `before` (or at the newest message).
    pub after: Option<i64>,
    /// At most this many messages.
    pub limit: u32,
}

/// Where a search looks: the rooms `user` is a member of now, narrowed by the rest.
#[derive(Debug, Clone, Copy)]
pub struct SearchScope {
    pub user: UserId,
    pub room: Option<RoomId>,
    pub author: Option<UserId>,
    /// Only messages sent at or after this.
    pub after: Option<Timestamp>,
    /// Only messages sent before this.
    pub before: Option<Timestamp>,
}

/// A message that may match a search, with its place in the search's order (newest
/// highest, `store::search::position`); the caller matches its text, since the index
/// offers a few that do not.
pub struct Candidate {
    pub position: i64,
    pub message: Message,
}

/// What one look at the search index found: the candidates in scope, newest first, and
/// where to look next.
pub struct Candidates {
    pub found: Vec<Candidate>,
    /// The lowest position looked at, when the look stopped at its bound: positions below
    /// it remain. `None` when nothing below was left to look at.
    pub next: Option<i64>,
}

/// A page of messages, oldest first.
pub struct MessagePage {
    pub messages: Vec<Message>,
    /// More messages lie beyond the page in the direction it was read.
    pub has_more: bool,
}

/// A member as stored; the caller adds what only live connections know (presence).
#[derive(Debug, Clone)]
pub struct MemberRecord {
    pub user: User,
    pub role: RoomRole,
    pub joined_at: Timestamp,
    pub read_seq: i64,
    pub last_seen_at: Option<Timestamp>,
}

/// A message as of its latest change, for catching up.
#[derive(Debug, Clone)]
pub struct Changed {
    /// The seq of the message's latest change (its own seq if it never changed).
    pub changed_seq: i64,
    pub message: Message,
}

/// A window of a room's changes, for catching up; see [`Store::changes`].
#[derive(Debug, Clone, Copy)]
pub struct ChangeSpan {
    /// The client has everything up to this seq (decides `created` or `updated`).
    pub since: i64,
    /// Where the catching up ends.
    pub up_to: i64,
    /// The latest change already sent in this catching up (`since` at first).
    pub after: i64,
    pub limit: u32,
}

/// What a reaction request did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reacted {
    /// The reaction changed under this seq.
    Changed { seq: i64 },
    /// It was already so; nothing changed.
    Unchanged,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Succeeds when the database answers.
    async fn ping(&self) -> StoreResult<()>;

    /// Takes no more writes (they fail with `Closed`), finishes and announces the ones in
    /// hand, and closes the database. Called once, at shutdown.
    async fn close(&self);

    /// Fails with `Conflict("username")` when the name is taken, or another one looks like
    /// it (the same look-alike key).
    async fn create_user(&self, user: NewUser) -> StoreResult<User>;
    async fn user(&self, id: UserId) -> StoreResult<Option<User>>;
    async fn credentials(&self, username: &Username) -> StoreResult<Option<Credentials>>;
    /// Users whose username or display name starts with `prefix` (any case), by username.
    async fn search_users(&self, prefix: &str, limit: u32) -> StoreResult<Vec<User>>;

    async fn create_session(&self, session: NewSession) -> StoreResult<()>;
    /// The session with this token hash, if it exists, has not expired at `now` and its
    /// user is not deactivated.
    async fn session(
        &self,
        token_hash: &[u8; 32],
        now: Timestamp,
    ) -> StoreResult<Option<SessionRecord>>;
    /// Deletes a session (announcing `SessionEnded`); returns whether it existed.
    async fn delete_session(&self, token_hash: &[u8; 32]) -> StoreResult<bool>;
    /// Deletes expired sessions (their count is returned) and expired sign-in flows.
    async fn delete_expired_sessions(&self, now: Timestamp) -> StoreResult<u64>;

    /// The account an identity at a provider is linked to.
    async fn identity_user(&self, issuer: &str, subject: &str) -> StoreResult<Option<User>>;
    /// A user's identities, oldest first, and whether they have a password.
    async fn sign_in_methods(&self, user: UserId) -> StoreResult<SignInMethods>;
    async fn link_identity(&self, user: UserId, identity: NewIdentity) -> StoreResult<Linked>;
    /// Unlinks an identity unless it is the user's last way to sign in of those `ways`
    /// counts: no other identity of a configured provider, and no password that counts.
    async fn unlink_identity(
        &self,
        user: UserId,
        identity: IdentityId,
        ways: SignInWays,
    ) -> StoreResult<Unlinked>;
    /// Keeps a sign-in flow until it is taken or expires.
    async fn put_flow(&self, flow: PendingFlow) -> StoreResult<()>;
    /// A flow by its key's hash, and when it expires (expired or not); `take` deletes it
    /// in the same statement, so that only one request can finish it.
    async fn flow(
        &self,
        key_hash: [u8; 32],
        take: bool,
    ) -> StoreResult<Option<(String, Timestamp)>>;
    /// The server's secret named `name`, made from `candidate` on first use and the same
    /// for every start and every node after.
    async fn secret(&self, name: &'static str, candidate: Vec<u8>) -> StoreResult<Vec<u8>>;
    /// Which of `sessions` still exist and have not expired at `now`.
    async fn live_sessions(
        &self,
        sessions: &[SessionId],
        now: Timestamp,
    ) -> StoreResult<Vec<SessionId>>;

    /// Creates a room with its creator as owner and `members` as members (added by the
    /// creator), announcing each membership. Fails with `Conflict("room_name")` when a public
    /// room of that name (any case), or of one that looks like it (the same look-alike key),
    /// exists, and with `Blocked`, creating nothing, when one of `members` blocks the creator.
    async fn create_room(&self, room: NewRoom, members: Vec<UserId>) -> StoreResult<()>;
    /// The one DM room of a pair of users, created with `new_id` if there is none yet (and
    /// then both memberships are announced). Returns the room id and whether it was created.
    /// While `b` blocks `a` it fails with `Blocked`, and while `a` blocks `b` with
    /// `Blocking` (the DM is hidden from `a`), whether the room exists or not.
    async fn dm_room(
        &self,
        a: UserId,
        b: UserId,
        new_id: RoomId,
        now: Timestamp,
    ) -> StoreResult<(RoomId, bool)>;
    /// A room as `viewer` sees it, whether or not they are a member; `None` if no such room.
    /// A DM whose peer the viewer blocks is seen as if the viewer were not a member, here
    /// and in every read of the viewer's memberships below (rooms, cursors, access,
    /// memberships): it is hidden until unblocked.
    async fn room(&self, room: RoomId, viewer: UserId) -> StoreResult<Option<Room>>;
    /// What a user may do in a room; `None` if no such room. Cheap: for permission checks.
    async fn room_access(&self, room: RoomId, user: UserId) -> StoreResult<Option<RoomAccess>>;
    /// The rooms `user` is a member of, most recently active first.
    async fn user_rooms(&self, user: UserId) -> StoreResult<Vec<Room>>;
    /// Public rooms whose name starts with `prefix` (any case), by name.
    async fn public_rooms(
        &self,
        viewer: UserId,
        prefix: &str,
        limit: u32,
    ) -> StoreResult<Vec<Room>>;
    /// The rooms `user` is a member of, each with its current last seq and the user's
    /// counts.
    async fn room_cursors(&self, user: UserId) -> StoreResult<Vec<RoomCursor>>;
    /// The ids of the rooms `user` is a member of.
    async fn member_rooms(&self, user: UserId) -> StoreResult<Vec<RoomId>>;
    /// Every membership of `users`, as (user, room) pairs: what a node checks its
    /// subscriptions against when announcements may have been lost.
    async fn memberships(&self, users: &[UserId]) -> StoreResult<Vec<(UserId, RoomId)>>;
    /// The last seq of each of `rooms` that exists.
    async fn room_heads(&self, rooms: &[RoomId]) -> StoreResult<Vec<(RoomId, i64)>>;
    async fn members(&self, room: RoomId) -> StoreResult<Vec<MemberRecord>>;

    /// Adds a member (announcing it); false if they already were one. A new member has
    /// read everything before they joined.
    async fn add_member(
        &self,
        room: RoomId,
        user: UserId,
        by: AddedBy,
        now: Timestamp,
    ) -> StoreResult<bool>;
    /// Removes a member (announcing it); false if they were not one. `by` must be the
    /// member themself or the room's owner (`NotOwner`), and a member (`NotMember`). When
    /// the owner goes, the longest-standing remaining member becomes owner.
    async fn remove_member(&self, room: RoomId, user: UserId, by: UserId) -> StoreResult<bool>;

    /// Stores a message under the room's next seq (announcing it and whom it mentions),
    /// unless the author already stored one with the same client id in that room. Fails
    /// with `NotMember` if the author is not a member (or hides the DM: they block its
    /// other member), `Blocked` in a DM whose other member blocks the author, `MessageNotFound`/`MessageDeleted`
    /// for a reply to a message that is not there. Sending counts as reading up to the new
    /// seq.
    async fn insert_message(&self, message: NewMessage) -> StoreResult<Inserted>;
    /// A page of a room's messages, oldest first.
    async fn messages(&self, room: RoomId, page: Page) -> StoreResult<MessagePage>;
    /// One message of a room.
    async fn message(&self, room: RoomId, message: MessageId) -> StoreResult<Option<Message>>;
    /// Live messages in `scope` that may match `query`, newest first, below `below` (a
    /// position an earlier call returned) when given. Looks at no more than `examine` of
    /// the messages the index offers (those holding the query's terms in the scope's time
    /// bounds, in rooms the index tells apart when it can), however few of them are in
    /// scope: the work one call does is bounded.
    async fn search(
        &self,
        scope: SearchScope,
        query: &SearchQuery,
        below: Option<i64>,
        examine: u32,
    ) -> StoreResult<Candidates>;
    /// What a client that saw a room up to `span.since` needs to be up to date as of
    /// `span.up_to`: the messages created by `up_to` whose latest change is after `since`,
    /// each as it is now, in the order of their latest changes, starting after the change
    /// `span.after` (for paging). Only a message's latest change is recorded, so a message
    /// changed in the span and again after it must be included: its later change may not
    /// carry the earlier one.
    async fn changes(&self, room: RoomId, span: ChangeSpan) -> StoreResult<Vec<Changed>>;
    /// Replaces a message's body (the author only), under a new seq (announced, with any
    /// new mentions).
    async fn edit_message(
        &self,
        room: RoomId,
        message: MessageId,
        editor: UserId,
        body: MessageBody,
        now: Timestamp,
    ) -> StoreResult<Message>;
    /// Turns a message into a tombstone under a new seq (announced): its body, reactions and
    /// mentions are removed from storage. The author may delete it, and so may the owner of
    /// a room that is not a DM. Deleting a tombstone returns it and changes nothing.
    async fn delete_message(
        &self,
        room: RoomId,
        message: MessageId,
        by: UserId,
        now: Timestamp,
    ) -> StoreResult<Deleted>;
    /// Adds (or removes) one member's reaction under a new seq (announced), unless it is
    /// already so.
    async fn react(
        &self,
        room: RoomId,
        message: MessageId,
        user: UserId,
        emoji: Emoji,
        add: bool,
        now: Timestamp,
    ) -> StoreResult<Reacted>;
    /// Raises a member's read and delivered markers (never lowers them, never past the
    /// room's last seq; read implies delivered; delivered is kept in DMs only) and
    /// announces what moved. Returns the member's new counts if the read marker moved.
    /// Fails with `NotMember` for a non-member.
    async fn mark_read(
        &self,
        room: RoomId,
        user: UserId,
        read: Option<i64>,
        delivered: Option<i64>,
    ) -> StoreResult<Option<Unread>>;
    /// A member's read marker and counts.
    async fn unread(&self, room: RoomId, user: UserId) -> StoreResult<Unread>;
    /// Every member's markers in a room.
    async fn receipts(&self, room: RoomId) -> StoreResult<Vec<Receipt>>;
    /// Records when a user was last connected (never moves it back).
    async fn touch_last_seen(&self, user: UserId, at: Timestamp) -> StoreResult<()>;

    /// Records an uploaded file.
    async fn create_media(&self, media: NewMedia) -> StoreResult<()>;
    async fn media(&self, id: &MediaId) -> StoreResult<Option<MediaRecord>>;
    /// Forgets files never attached and uploaded before `before`; returns them, so their
    /// bytes can go too.
    async fn delete_unattached_media(&self, before: Timestamp) -> StoreResult<Vec<MediaId>>;
    /// Changes a profile (announcing it); returns the user as they now are, and the blob key
    /// of the avatar it replaced, if any, for the caller to remove.
    async fn update_profile(
        &self,
        user: UserId,
        change: ProfileChange,
    ) -> StoreResult<(User, Option<String>)>;
    /// The blob key of a user's avatar.
    async fn avatar(&self, user: UserId) -> StoreResult<Option<String>>;

    /// Deletes a message as an administrator: any message of a public room, member or not,
    /// while `admin` is still an administrator (checked in the write); otherwise refused
    /// with `NotMember` (a room that is not public) or `NotAuthor` (no longer an
    /// administrator). Announced like any deletion.
    async fn delete_message_as_admin(
        &self,
        room: RoomId,
        message: MessageId,
        admin: UserId,
        now: Timestamp,
    ) -> StoreResult<Deleted>;

    /// A user with their administrator flag and whether they are deactivated.
    async fn account(&self, user: UserId) -> StoreResult<Option<Account>>;
    async fn account_named(&self, username: &Username) -> StoreResult<Option<Account>>;
    /// Accounts whose username or display name starts with `prefix` (any case), by
    /// username, those after `after` (a username) only.
    async fn accounts(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<Account>>;
    /// Changes an account; `None` if there is no such user. Every session a change ends
    /// is announced (`SessionEnded`), so its connections close on every node.
    async fn change_account(
        &self,
        user: UserId,
        change: AccountChange,
    ) -> StoreResult<Option<AccountChanged>>;
    /// Records what an administrator did.
    async fn record_admin_action(&self, action: AdminAction) -> StoreResult<()>;

    /// `blocker` blocks `blocked` (never themself: the caller checks); false if they did
    /// already. Their DM, if any, leaves the blocker's view: announced as `DmHidden`, so
    /// the blocker's connections drop it.
    async fn block(&self, blocker: UserId, blocked: UserId, now: Timestamp) -> StoreResult<bool>;
    /// Ends a block; false if there was none. Their DM, if any, comes back into the
    /// blocker's view: announced as `DmHidden` with `hidden: false`.
    async fn unblock(&self, blocker: UserId, blocked: UserId) -> StoreResult<bool>;
    /// The users `blocker` blocks, most recently blocked first.
    async fn blocked_users(&self, blocker: UserId) -> StoreResult<Vec<User>>;
}
