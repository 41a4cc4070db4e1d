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
//! reports, so it comes through `sync`.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message as WsMessage, Utf8Bytes, WebSocket};
use futures_util::stream::{BoxStream, FuturesUnordered};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tracing::Instrument;

use super::hub::{CloseRequest, Hub, Outbound, Peer};
use super::protocol::{CLIENT_TYPES, ClientFrame, Envelope, ServerFrame, close_code};
use super::sync::{SyncItem, SyncRange, sync_stream};
use crate::app::{App, Session};
use crate::domain::{Message, RoomId, Timestamp, User};
use crate::error::Error;
use crate::store::Page;

/// Sends a connection may have in flight before the server stops reading its frames; the
/// client then feels backpressure instead of the server buffering without bound.
const MAX_SENDS_IN_FLIGHT: usize = 32;
/// `sync` requests that may wait behind the one being answered.
const MAX_QUEUED_SYNCS: usize = 4;
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
    /// Whether a close frame should still be sent (not when the client closed first or
    /// the socket is broken).
    send_frame: bool,
}

impl Closing {
    const fn send(code: u16, reason: &'static str) -> Self {
        Self { code, reason, send_frame: true }
    }

    const fn silent(code: u16, reason: &'static str) -> Self {
        Self { code, reason, send_frame: false }
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

/// A `sync` waiting to be answered.
struct SyncRequest {
    id: Option<String>,
    ranges: Vec<SyncRange>,
}

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
    /// The `sync` being answered, as a stream of pages.
    sync: Option<BoxStream<'static, SyncItem>>,
    queued_syncs: VecDeque<SyncRequest>,
    /// When the client was last heard from, for the heartbeat.
    last_heard: Instant,
    /// Frames waiting to be written with the next flush.
    outgoing: Vec<Utf8Bytes>,
    /// A heartbeat ping is due with the next flush.
    pending_ping: bool,
}

impl Connection {
    fn new(
        app: App,
        socket: WebSocket,
        peer: Arc<Peer>,
        queue: mpsc::Receiver<Outbound>,
        session: Session,
    ) -> Self {
        Self {
            app,
            socket,
            peer,
            queue,
            user: session.user,
            session_expires_at: session.expires_at,
            cursors: HashMap::new(),
            sends: FuturesUnordered::new(),
            sync: None,
            queued_syncs: VecDeque::new(),
            last_heard: Instant::now(),
            outgoing: Vec::new(),
            pending_ping: false,
        }
    }

    async fn run(&mut self) -> Closing {
        if let Err(error) = self.start().await {
            tracing::error!(%error, "could not start a websocket session");
            return Closing::send(close_code::INTERNAL, "internal error");
        }
        if let Err(closing) = self.flush().await {
            return closing;
        }
        let interval = self.app.settings().heartbeat_interval;
        let mut heartbeat = tokio::time::interval_at(Instant::now() + interval, interval);
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let shutdown = self.app.shutdown_signal().clone();
        loop {
            let step = tokio::select! {
                biased;
                () = shutdown.cancelled() => Err(Closing::send(close_code::GOING_AWAY, "server shutting down")),
                request = self.peer.close_requested() => Err(match request {
                    CloseRequest::TooSlow => Closing::send(close_code::TOO_SLOW, "too slow: reconnect and sync"),
                    CloseRequest::SessionEnded => Closing::send(close_code::SESSION_ENDED, "session ended"),
                }),
                item = self.queue.recv() => match item {
                    Some(item) => self.on_outbound(item).await,
                    // The hub holds the sender while the peer is registered, which it is
                    // until this task ends.
                    None => Err(Closing::send(close_code::INTERNAL, "internal error")),
                },
                Some(outcome) = self.sends.next(), if !self.sends.is_empty() => {
                    self.on_send_outcome(outcome);
                    Ok(())
                }
                Some(item) = next_sync_item(&mut self.sync) => {
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
            if let Err(closing) = self.flush().await {
                return closing;
            }
        }
    }

    /// Subscribes to the user's rooms, reads where each stands, and sends `ready`.
    async fn start(&mut self) -> Result<(), Error> {
        let store = self.app.store().clone();
        let hub = self.app.hub().clone();
        let user_id = self.user.id;
        // Subscribe first, read the seqs second (see the invariant at the top). The first
        // read only learns which rooms to subscribe to.
        let before = store.room_cursors(user_id).await?;
        for cursor in &before {
            hub.subscribe(&self.peer, cursor.room_id);
        }
        let cursors = store.room_cursors(user_id).await?;
        for cursor in &cursors {
            // A room joined between the two reads: the hub subscribed us already, but
            // subscribing again is harmless.
            hub.subscribe(&self.peer, cursor.room_id);
        }
        for left in before.iter().filter(|b| !cursors.iter().any(|c| c.room_id == b.room_id)) {
            hub.unsubscribe(&self.peer, left.room_id);
        }
        self.cursors = cursors
            .iter()
            .map(|c| (c.room_id, Cursor { live_from: c.last_seq, delivered: c.last_seq }))
            .collect();
        let heartbeat_interval_ms = self.app.settings().heartbeat_interval.as_millis() as u64;
        let ready = ServerFrame::Ready { user: &self.user, rooms: &cursors, heartbeat_interval_ms };
        self.outgoing.push(ready.to_text());
        Ok(())
    }

    /// Handles one queued item, then whatever else is already queued, up to a limit.
    async fn on_outbound(&mut self, first: Outbound) -> Result<(), Closing> {
        self.handle_outbound(first).await;
        for _ in 1..MAX_ITEMS_PER_FLUSH {
            match self.queue.try_recv() {
                Ok(item) => self.handle_outbound(item).await,
                Err(_) => break,
            }
        }
        Ok(())
    }

    async fn handle_outbound(&mut self, item: Outbound) {
        match item {
            Outbound::Event { room_id, seq, frame } => {
                let Some(cursor) = self.cursors.get(&room_id).copied() else {
                    return; // Not (or no longer) a member.
                };
                if seq <= cursor.delivered {
                    return; // Already sent, or covered by `sync`.
                }
                if seq > cursor.delivered + 1 {
                    self.fill_gap(room_id, cursor.delivered, seq).await;
                }
                self.outgoing.push(frame);
                if let Some(cursor) = self.cursors.get_mut(&room_id) {
                    cursor.delivered = seq;
                }
            }
            Outbound::Joined(room_id) => self.on_joined(room_id).await,
            Outbound::Left(room_id) => {
                self.app.hub().unsubscribe(&self.peer, room_id);
                if self.cursors.remove(&room_id).is_some() {
                    self.outgoing.push(ServerFrame::RoomRemoved { room_id }.to_text());
                }
            }
        }
    }

    /// Starts a room the user just joined: the hub has subscribed us already; read where
    /// the room stands and tell the client.
    async fn on_joined(&mut self, room_id: RoomId) {
        if self.cursors.contains_key(&room_id) {
            return;
        }
        match self.app.store().room(room_id, self.user.id).await {
            Ok(Some(room)) if room.joined => {
                let last_seq = room.last_seq;
                self.cursors.insert(room_id, Cursor { live_from: last_seq, delivered: last_seq });
                self.outgoing
                    .push(ServerFrame::RoomAdded { room_id, last_seq, room: &room }.to_text());
            }
            // Left again before we got here; the `Left` item follows in the queue.
            Ok(_) => self.app.hub().unsubscribe(&self.peer, room_id),
            Err(error) => {
                tracing::error!(%error, %room_id, "could not start a joined room's stream");
                self.app.hub().unsubscribe(&self.peer, room_id);
            }
        }
    }

    /// Sends the events between `delivered` and `next` from the store. A single-node bus
    /// never skips; a networked one may lose an event or deliver two nodes' events out of
    /// order, and this keeps the stream gap-free regardless.
    async fn fill_gap(&mut self, room_id: RoomId, delivered: i64, next: i64) {
        tracing::debug!(%room_id, delivered, next, "filling a gap in a room's stream");
        let mut after = delivered;
        while after + 1 < next {
            let page = Page { before: Some(next), after: Some(after), limit: 200 };
            match self.app.store().messages(room_id, page).await {
                Ok(page) if !page.messages.is_empty() => {
                    for message in &page.messages {
                        self.outgoing.push(message_frame(message));
                        after = message.seq;
                    }
                }
                Ok(_) => break,
                Err(error) => {
                    tracing::error!(%error, %room_id, "could not fill a gap; the client must sync");
                    break;
                }
            }
        }
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
                self.send_error(
                    "unsupported_frame",
                    "Frames must be JSON text, not binary.",
                    None,
                    None,
                );
                Ok(())
            }
            Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => Ok(()),
            Some(Ok(WsMessage::Close(frame))) => {
                let code = frame.map_or(1005, |f| f.code);
                Err(Closing { code, reason: "closed by client", send_frame: false })
            }
            Some(Err(error)) if is_message_too_big(&error) => {
                Err(Closing::send(close_code::TOO_BIG, "frame larger than 64 KiB"))
            }
            Some(Err(error)) => {
                tracing::debug!(%error, "websocket read failed");
                Err(Closing::silent(1006, "connection lost"))
            }
            None => Err(Closing::silent(1006, "connection lost")),
        }
    }

    fn on_text(&mut self, text: &str) {
        let envelope: Envelope = match serde_json::from_str(text) {
            Ok(envelope) => envelope,
            Err(_) => {
                return self.send_error("invalid_json", "Frames must be JSON objects.", None, None);
            }
        };
        let client_id = envelope.client_id();
        let known = matches!(&envelope.kind, Some(serde_json::Value::String(kind)) if CLIENT_TYPES.contains(&kind.as_str()));
        if !known {
            let message =
                format!("Unknown frame type; expected one of {}.", CLIENT_TYPES.join(", "));
            return self.send_error("unknown_type", &message, client_id.as_deref(), None);
        }
        let frame: ClientFrame = match serde_json::from_str(text) {
            Ok(frame) => frame,
            Err(error) => {
                let message = format!("Invalid frame: {error}.");
                return self.send_error("invalid_frame", &message, client_id.as_deref(), None);
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
            ClientFrame::Ping { id } => {
                self.outgoing.push(ServerFrame::Pong { id: id.as_ref() }.to_text())
            }
        }
    }

    fn on_send_outcome(&mut self, outcome: SendOutcome) {
        match outcome.result {
            Ok(message) => {
                let ack =
                    ServerFrame::MessageAck { client_id: &outcome.client_id, message: &message };
                self.outgoing.push(ack.to_text());
            }
            Err(error) => {
                if let Error::Internal(cause) = &error {
                    tracing::error!(error = %cause, "send failed");
                }
                self.send_error(
                    error.code(),
                    &error.public_message(),
                    Some(&outcome.client_id),
                    None,
                );
            }
        }
    }

    /// Plans a `sync` from the cursors as they are now, and starts it unless another one is
    /// being answered.
    fn on_sync_request(&mut self, since: HashMap<String, i64>, id: Option<String>) {
        if self.queued_syncs.len() >= MAX_QUEUED_SYNCS {
            return self.send_error(
                "too_many_syncs",
                "Wait for sync.done before sending another sync.",
                None,
                None,
            );
        }
        let mut ranges = Vec::with_capacity(since.len());
        for (room, seen) in since {
            let cursor =
                room.parse::<RoomId>().ok().and_then(|r| self.cursors.get(&r).map(|c| (r, *c)));
            match cursor {
                Some((room_id, cursor)) if seen.max(0) < cursor.live_from => {
                    ranges.push(SyncRange { room_id, after: seen.max(0), up_to: cursor.live_from });
                }
                Some(_) => {}
                None => self.send_error("not_found", "Room not found.", None, Some(&room)),
            }
        }
        self.queued_syncs.push_back(SyncRequest { id, ranges });
        if self.sync.is_none() {
            self.start_next_sync();
        }
    }

    fn start_next_sync(&mut self) {
        self.sync = self
            .queued_syncs
            .pop_front()
            .map(|request| sync_stream(self.app.store().clone(), request.ranges, request.id));
    }

    fn on_sync_item(&mut self, item: SyncItem) {
        match item {
            SyncItem::Frames(frames) => self.outgoing.extend(frames),
            SyncItem::Failed(error) => {
                tracing::error!(%error, "sync failed");
                self.send_error(
                    "sync_failed",
                    "The server could not finish the sync; send it again.",
                    None,
                    None,
                );
            }
            SyncItem::Done(id) => {
                self.outgoing.push(ServerFrame::SyncDone { id: id.as_deref() }.to_text());
                self.start_next_sync();
            }
        }
    }

    fn on_heartbeat(&mut self) -> Result<(), Closing> {
        if self.last_heard.elapsed() > self.app.settings().heartbeat_timeout {
            return Err(Closing::send(close_code::HEARTBEAT_TIMEOUT, "heartbeat timeout"));
        }
        if Timestamp::now() >= self.session_expires_at {
            return Err(Closing::send(close_code::SESSION_ENDED, "session expired"));
        }
        // A ping goes out with the next flush, right after this.
        self.pending_ping = true;
        Ok(())
    }

    fn send_error(
        &mut self,
        code: &str,
        message: &str,
        client_id: Option<&str>,
        room_id: Option<&str>,
    ) {
        let frame = ServerFrame::Error { code, message, client_id, room_id };
        self.outgoing.push(frame.to_text());
    }

    /// Writes every waiting frame and flushes once. Gives up when the client does not take
    /// them in time, or when the hub asks the connection to close meanwhile.
    async fn flush(&mut self) -> Result<(), Closing> {
        let ping = std::mem::take(&mut self.pending_ping);
        if self.outgoing.is_empty() && !ping {
            return Ok(());
        }
        let frames = self.outgoing.drain(..).map(WsMessage::Text);
        let frames = frames.chain(ping.then(|| WsMessage::Ping(Default::default())));
        let socket = &mut self.socket;
        let write = async move {
            for frame in frames {
                socket.feed(frame).await?;
            }
            socket.flush().await
        };
        tokio::select! {
            written = write => written.map_err(|_| Closing::silent(1006, "connection lost")),
            _ = self.peer.close_requested() => Err(Closing::silent(close_code::TOO_SLOW, "too slow: reconnect and sync")),
            () = tokio::time::sleep(WRITE_TIMEOUT) => Err(Closing::silent(close_code::TOO_SLOW, "too slow: write timed out")),
        }
    }

    /// Sends the close frame, if one is due, without waiting long for a client that does
    /// not read.
    async fn close(&mut self, closing: Closing) {
        if !closing.send_frame {
            return;
        }
        let frame = CloseFrame { code: closing.code, reason: closing.reason.into() };
        let _ =
            tokio::time::timeout(CLOSE_TIMEOUT, self.socket.send(WsMessage::Close(Some(frame))))
                .await;
    }
}

/// The `message.created` frame of a stored message.
pub(super) fn message_frame(message: &Message) -> Utf8Bytes {
    ServerFrame::MessageCreated { room_id: message.room_id, seq: message.seq, message }.to_text()
}

/// The next item of the sync being answered; never resolves when there is none.
async fn next_sync_item(sync: &mut Option<BoxStream<'static, SyncItem>>) -> Option<SyncItem> {
    match sync {
        Some(stream) => stream.next().await,
        None => std::future::pending().await,
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
