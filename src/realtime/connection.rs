//! One WebSocket connection: a task that reads the client's frames, writes the room events
//! the hub queues for it, answers `sync`, and keeps the heartbeat.
//!
//! Ordering, per room: the connection keeps a cursor, `live_from` (the seq `ready` or
//! `room.added` reported) and `delivered` (the highest seq sent live). A live event is sent
//! only if its seq is above `delivered`, so nothing reaches the client twice; if it is more
//! than one above, the missing events are read from the store first, so nothing is skipped.
//! A `sync` sends what lies between the client's last seen seq and `live_from`, read from
//! the store page by page, so the two streams never overlap.
//!
//! Architecture invariant: the connection subscribes to a room before it reads the room's
//! last seq. An event committed after that read is published after the subscription, so
//! it reaches the queue; an event committed before it is covered by the seq that `ready`
//! reports, so it comes through `sync`. After `ready`, only the hub changes the
//! connection's subscriptions.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket};
use futures_util::stream::FuturesUnordered;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tracing::Instrument;

use super::hub::{CloseRequest, Hub, Outbound, Peer};
use super::protocol::{
    CLIENT_TYPES, ClientFrame, Envelope, ServerFrame, close_code, message_created_frame,
};
use super::sync::{SyncItem, SyncRange, SyncRequest, Syncs};
use crate::app::{App, Session};
use crate::domain::{Message, RoomId, Timestamp, User};
use crate::error::Error;
use crate::store::Page;

/// Sends a connection may have in flight before the server stops reading its frames; the
/// client then feels backpressure instead of the server buffering without bound.
const MAX_SENDS_IN_FLIGHT: usize = 32;
/// Queue items written to the socket with one flush.
const MAX_ITEMS_PER_FLUSH: usize = 256;
/// A write that takes longer than this means the client is not reading.
const WRITE_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a close frame may take to leave.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Serves one upgraded WebSocket until it closes.
pub async fn serve(app: App, socket: WebSocket, session: Session) {
    let span = tracing::info_span!("ws", user_id = %session.user.id, session_id = %session.id);
    async move {
        let started = Instant::now();
        let hub = app.hub().clone();
        let (peer, queue) = hub.register(session.user.id, session.id, app.settings().ws_queue);
        let _registration = Registration { hub, peer: peer.clone() };
        tracing::info!(conn = peer.id, "websocket connected");
        let mut connection = Connection::new(app, socket, peer, queue, session);
        let closing = connection.run().await;
        connection.close(closing).await;
        tracing::info!(
            duration_ms = started.elapsed().as_millis() as u64,
            close_code = closing.code,
            reason = closing.reason,
            "websocket closed"
        );
    }
    .instrument(span)
    .await
}

/// Removes the connection from the hub however the task ends.
struct Registration {
    hub: Arc<Hub>,
    peer: Arc<Peer>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.hub.unregister(&self.peer);
    }
}

/// How and why a connection ends.
#[derive(Debug, Clone, Copy)]
struct Closing {
    code: u16,
    reason: &'static str,
    /// Whether a close frame should still be sent (not when the socket is broken).
    send_frame: bool,
}

impl Closing {
    const fn send(code: u16, reason: &'static str) -> Self {
        Self { code, reason, send_frame: true }
    }

    const fn lost() -> Self {
        Self { code: 1006, reason: "connection lost", send_frame: false }
    }

    const INTERNAL: Self = Self::send(close_code::INTERNAL, "internal error: reconnect");
    const SHUTDOWN: Self = Self::send(close_code::GOING_AWAY, "server shutting down");

    fn requested(request: CloseRequest) -> Self {
        match request {
            CloseRequest::TooSlow => {
                Self::send(close_code::TOO_SLOW, "too slow: reconnect and sync")
            }
            CloseRequest::SessionEnded => Self::send(close_code::SESSION_ENDED, "session ended"),
        }
    }
}

/// Where one room's stream stands on this connection.
#[derive(Debug, Clone, Copy)]
struct Cursor {
    /// Live events start after this seq; `sync` covers up to it.
    live_from: i64,
    /// The highest seq sent on the live stream.
    delivered: i64,
}

/// The outcome of one `send`, for its ack or error frame.
struct SendOutcome {
    client_id: String,
    result: Result<Message, Error>,
}

type SendFuture = Pin<Box<dyn Future<Output = SendOutcome> + Send>>;

struct Connection {
    app: App,
    socket: WebSocket,
    peer: Arc<Peer>,
    /// Items the hub queued for this connection.
    queue: mpsc::Receiver<Outbound>,
    user: User,
    session_expires_at: Timestamp,
    cursors: HashMap<RoomId, Cursor>,
    sends: FuturesUnordered<SendFuture>,
    syncs: Syncs,
    /// When the client was last heard from, for the heartbeat.
    last_heard: Instant,
    /// Frames waiting to be written with the next flush.
    outgoing: Vec<WsMessage>,
}

impl Connection {
    fn new(
        app: App,
        socket: WebSocket,
        peer: Arc<Peer>,
        queue: mpsc::Receiver<Outbound>,
        session: Session,
    ) -> Self {
        let syncs = Syncs::new(app.store().clone());
        Self {
            app,
            socket,
            peer,
            queue,
            user: session.user,
            session_expires_at: session.expires_at,
            cursors: HashMap::new(),
            sends: FuturesUnordered::new(),
            syncs,
            last_heard: Instant::now(),
            outgoing: Vec::new(),
        }
    }

    async fn run(&mut self) -> Closing {
        if let Err(error) = self.start().await {
            tracing::error!(%error, "could not start a websocket session");
            return Closing::INTERNAL;
        }
        let interval = self.app.settings().heartbeat_interval;
        let mut heartbeat = tokio::time::interval_at(Instant::now() + interval, interval);
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let shutdown = self.app.shutdown_signal().clone();
        loop {
            if let Err(closing) = self.flush().await {
                return closing;
            }
            // Not biased: a room that never falls silent must not starve the client's own
            // frames, its sync or the heartbeat.
            let step = tokio::select! {
                () = shutdown.cancelled() => Err(Closing::SHUTDOWN),
                request = self.peer.close_requested() => Err(Closing::requested(request)),
                // The hub keeps the sender while this connection holds its peer, so the
                // queue never closes under us.
                Some(item) = self.queue.recv() => self.on_outbound(item).await,
                Some(outcome) = self.sends.next(), if !self.sends.is_empty() => {
                    self.on_send_outcome(outcome);
                    Ok(())
                }
                item = self.syncs.next() => {
                    self.on_sync_item(item);
                    Ok(())
                }
                incoming = self.socket.next(), if self.sends.len() < MAX_SENDS_IN_FLIGHT => {
                    self.on_incoming(incoming)
                }
                _ = heartbeat.tick() => self.on_heartbeat(),
            };
            if let Err(closing) = step {
                return closing;
            }
        }
    }

    /// Subscribes to the user's rooms, reads where each stands, and queues `ready`.
    async fn start(&mut self) -> Result<(), Error> {
        let store = self.app.store().clone();
        let hub = self.app.hub().clone();
        let user_id = self.user.id;
        // Subscribe first, read the seqs second (see the invariant at the top); the first
        // read only learns which rooms to subscribe to. A room joined between the reads was
        // subscribed by the hub as well; a room left between them stays subscribed until
        // the connection ends, and its events are dropped for want of a cursor.
        for cursor in store.room_cursors(user_id).await? {
            hub.subscribe(&self.peer, cursor.room_id);
        }
        let cursors = store.room_cursors(user_id).await?;
        for cursor in &cursors {
            hub.subscribe(&self.peer, cursor.room_id);
        }
        self.cursors = cursors
            .iter()
            .map(|c| (c.room_id, Cursor { live_from: c.last_seq, delivered: c.last_seq }))
            .collect();
        let heartbeat_interval_ms = self.app.settings().heartbeat_interval.as_millis() as u64;
        let ready = ServerFrame::Ready { user: &self.user, rooms: &cursors, heartbeat_interval_ms };
        self.outgoing.push(WsMessage::Text(ready.to_text()));
        Ok(())
    }

    /// Handles one queued item, then whatever else is already queued, up to a limit, so
    /// that they leave with one flush.
    async fn on_outbound(&mut self, first: Outbound) -> Result<(), Closing> {
        self.handle_outbound(first).await?;
        for _ in 1..MAX_ITEMS_PER_FLUSH {
            match self.queue.try_recv() {
                Ok(item) => self.handle_outbound(item).await?,
                Err(_) => break,
            }
        }
        Ok(())
    }

    async fn handle_outbound(&mut self, item: Outbound) -> Result<(), Closing> {
        match item {
            Outbound::Event { room_id, seq, frame } => {
                let Some(cursor) = self.cursors.get(&room_id).copied() else {
                    return Ok(()); // Not (or no longer) a member.
                };
                if seq <= cursor.delivered {
                    return Ok(()); // Already sent, or covered by `sync`.
                }
                if seq > cursor.delivered + 1 {
                    self.fill_gap(room_id, cursor.delivered, seq).await?;
                }
                self.outgoing.push(WsMessage::Text(frame));
                if let Some(cursor) = self.cursors.get_mut(&room_id) {
                    cursor.delivered = seq;
                }
            }
            Outbound::Joined(room_id) => self.on_joined(room_id).await?,
            Outbound::Left(room_id) => {
                if self.cursors.remove(&room_id).is_some() {
                    self.push(ServerFrame::RoomRemoved { room_id });
                }
            }
        }
        Ok(())
    }

    /// Starts a room the user just joined: the hub has subscribed us already; read where
    /// the room stands and tell the client.
    async fn on_joined(&mut self, room_id: RoomId) -> Result<(), Closing> {
        if self.cursors.contains_key(&room_id) {
            return Ok(());
        }
        match self.app.store().room(room_id, self.user.id).await {
            Ok(Some(room)) if room.joined => {
                let last_seq = room.last_seq;
                self.cursors.insert(room_id, Cursor { live_from: last_seq, delivered: last_seq });
                self.push(ServerFrame::RoomAdded { room_id, last_seq, room: &room });
            }
            // Left again already; the hub has queued the `Left` after this.
            Ok(_) => {}
            Err(error) => {
                // Without its start the room would stay silent; a reconnect repairs that.
                tracing::error!(%error, %room_id, "could not start a joined room's stream");
                return Err(Closing::INTERNAL);
            }
        }
        Ok(())
    }

    /// Sends the events between `delivered` and `next` from the store. A single-node bus
    /// never skips; a networked one may lose an event or deliver two nodes' events out of
    /// order, and this keeps the stream gap-free regardless.
    async fn fill_gap(
        &mut self,
        room_id: RoomId,
        delivered: i64,
        next: i64,
    ) -> Result<(), Closing> {
        tracing::debug!(%room_id, delivered, next, "filling a gap in a room's stream");
        let mut after = delivered;
        while after + 1 < next {
            let page = Page { before: Some(next), after: Some(after), limit: 200 };
            let page = self.app.store().messages(room_id, page).await.map_err(|error| {
                // Sending on with a hole would break the promise; a reconnect and sync won't.
                tracing::error!(%error, %room_id, "could not fill a gap");
                Closing::INTERNAL
            })?;
            let Some(last) = page.messages.last() else { break };
            after = last.seq;
            self.outgoing
                .extend(page.messages.iter().map(|m| WsMessage::Text(message_created_frame(m))));
            // A large gap leaves page by page, not all at once.
            self.flush().await?;
        }
        Ok(())
    }

    fn on_incoming(
        &mut self,
        incoming: Option<Result<WsMessage, axum::Error>>,
    ) -> Result<(), Closing> {
        self.last_heard = Instant::now();
        match incoming {
            Some(Ok(WsMessage::Text(text))) => {
                self.on_text(&text);
                Ok(())
            }
            Some(Ok(WsMessage::Binary(_))) => {
                self.push_error("unsupported_frame", "Frames must be JSON text, not binary.");
                Ok(())
            }
            Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => Ok(()),
            Some(Ok(WsMessage::Close(frame))) => {
                // The reply to the client's close is queued inside the socket; `close`
                // flushes it.
                let code = frame.map_or(1005, |f| f.code);
                Err(Closing { code, reason: "closed by client", send_frame: false })
            }
            Some(Err(error)) if is_message_too_big(&error) => {
                Err(Closing::send(close_code::TOO_BIG, "frame larger than 64 KiB"))
            }
            Some(Err(error)) => {
                tracing::debug!(%error, "websocket read failed");
                Err(Closing::lost())
            }
            None => Err(Closing::lost()),
        }
    }

    fn on_text(&mut self, text: &str) {
        let Ok(envelope) = serde_json::from_str::<Envelope>(text) else {
            return self.push_error("invalid_json", "Frames must be JSON objects.");
        };
        let client_id = envelope.client_id();
        let known = matches!(&envelope.kind, Some(serde_json::Value::String(kind)) if CLIENT_TYPES.contains(&kind.as_str()));
        if !known {
            let message =
                format!("Unknown frame type; expected one of {}.", CLIENT_TYPES.join(", "));
            return self.push(ServerFrame::Error {
                code: "unknown_type",
                message: &message,
                client_id: client_id.as_deref(),
                room_id: None,
            });
        }
        let frame = match serde_json::from_str::<ClientFrame>(text) {
            Ok(frame) => frame,
            Err(error) => {
                let message = format!("Invalid frame: {error}.");
                return self.push(ServerFrame::Error {
                    code: "invalid_frame",
                    message: &message,
                    client_id: client_id.as_deref(),
                    room_id: None,
                });
            }
        };
        match frame {
            ClientFrame::Send { room_id, body, client_id } => {
                let app = self.app.clone();
                let author = self.user.id;
                self.sends.push(Box::pin(async move {
                    let result = app
                        .send_message_to(author, &room_id, &body, Some(&client_id))
                        .await
                        .map(|(message, _)| message);
                    SendOutcome { client_id, result }
                }));
            }
            ClientFrame::Sync { since, id } => self.on_sync_request(since, id),
            ClientFrame::Ping { id } => self.push(ServerFrame::Pong { id: id.as_ref() }),
        }
    }

    fn on_send_outcome(&mut self, outcome: SendOutcome) {
        match outcome.result {
            Ok(message) => {
                self.push(ServerFrame::MessageAck {
                    client_id: &outcome.client_id,
                    message: &message,
                });
            }
            Err(error) => {
                if let Error::Internal(cause) = &error {
                    tracing::error!(error = %cause, "send failed");
                }
                self.push(ServerFrame::Error {
                    code: error.code(),
                    message: &error.public_message(),
                    client_id: Some(&outcome.client_id),
                    room_id: None,
                });
            }
        }
    }

    /// Plans a `sync` from the cursors as they are now: per room, from the client's last
    /// seen seq up to where the live stream starts.
    fn on_sync_request(&mut self, since: HashMap<String, i64>, id: Option<String>) {
        let mut planned: HashMap<RoomId, SyncRange> = HashMap::with_capacity(since.len());
        for (room, seen) in since {
            let Some((room_id, cursor)) =
                room.parse::<RoomId>().ok().and_then(|r| self.cursors.get(&r).map(|c| (r, *c)))
            else {
                self.push(ServerFrame::Error {
                    code: "not_found",
                    message: "Room not found.",
                    client_id: None,
                    room_id: Some(&room),
                });
                continue;
            };
            // Ids parse regardless of case: one room may be named twice. Sync it once,
            // from the earliest seq asked.
            let after = seen.max(0);
            let range = planned.entry(room_id).or_insert(SyncRange {
                room_id,
                after,
                up_to: cursor.live_from,
            });
            range.after = range.after.min(after);
        }
        let ranges = planned.into_values().filter(|r| r.after < r.up_to).collect();
        if self.syncs.request(SyncRequest { id, ranges }).is_err() {
            self.push_error("too_many_syncs", "Wait for sync.done before sending another sync.");
        }
    }

    fn on_sync_item(&mut self, item: SyncItem) {
        match item {
            // A room left while its sync was under way gets nothing more.
            SyncItem::Frames(room_id, frames) => {
                if self.cursors.contains_key(&room_id) {
                    self.outgoing.extend(frames.into_iter().map(WsMessage::Text));
                }
            }
            SyncItem::Failed(error) => {
                tracing::error!(%error, "sync failed");
                self.push_error(
                    "sync_failed",
                    "The server could not finish the sync; send it again.",
                );
            }
            SyncItem::Done(id) => self.push(ServerFrame::SyncDone { id: id.as_deref() }),
        }
    }

    fn on_heartbeat(&mut self) -> Result<(), Closing> {
        if self.last_heard.elapsed() > self.app.settings().heartbeat_timeout {
            return Err(Closing::send(close_code::HEARTBEAT_TIMEOUT, "heartbeat timeout"));
        }
        if Timestamp::now() >= self.session_expires_at {
            return Err(Closing::send(close_code::SESSION_ENDED, "session expired"));
        }
        self.outgoing.push(WsMessage::Ping(Default::default()));
        Ok(())
    }

    fn push(&mut self, frame: ServerFrame<'_>) {
        self.outgoing.push(WsMessage::Text(frame.to_text()));
    }

    fn push_error(&mut self, code: &str, message: &str) {
        self.push(ServerFrame::Error { code, message, client_id: None, room_id: None });
    }

    /// Writes every waiting frame and flushes once. Gives up when the client does not take
    /// them in time, when the hub asks the connection to close, or at shutdown.
    async fn flush(&mut self) -> Result<(), Closing> {
        if self.outgoing.is_empty() {
            return Ok(());
        }
        let socket = &mut self.socket;
        let frames = self.outgoing.drain(..);
        let write = async move {
            for frame in frames {
                socket.feed(frame).await?;
            }
            socket.flush().await
        };
        // A frame handed to the socket is buffered whole, so a close frame sent after an
        // interrupted write still follows complete frames.
        tokio::select! {
            written = write => written.map_err(|_| Closing::lost()),
            request = self.peer.close_requested() => Err(Closing::requested(request)),
            () = self.app.shutdown_signal().cancelled() => Err(Closing::SHUTDOWN),
            () = tokio::time::sleep(WRITE_TIMEOUT) => Err(Closing::requested(CloseRequest::TooSlow)),
        }
    }

    /// Sends the close frame, if one is due, or completes a close the client started;
    /// either way without waiting long for a client that does not read.
    async fn close(&mut self, closing: Closing) {
        let closed = async {
            if closing.send_frame {
                let frame = CloseFrame { code: closing.code, reason: closing.reason.into() };
                self.socket.send(WsMessage::Close(Some(frame))).await
            } else {
                self.socket.flush().await
            }
        };
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, closed).await;
    }
}

/// Whether a read failed because the client sent a frame over the size limit.
fn is_message_too_big(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        if let Some(tungstenite::Error::Capacity(_)) = current.downcast_ref::<tungstenite::Error>()
        {
            return true;
        }
        source = current.source();
    }
    false
}
