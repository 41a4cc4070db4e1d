//! One WebSocket connection: a task that reads the client's frames (`incoming`), writes the
//! room events the hub queues for it, answers `sync`, and keeps the heartbeat.
//!
//! Ordering, per room: the connection keeps a cursor, `live_from` (the seq `ready` or
//! `room.added` reported) and `delivered` (the highest seq sent live). A live event is sent
//! only if its seq is above `delivered`, so nothing reaches the client twice; if it is more
//! than one above, what changed in between is read from the store first, so nothing is
//! skipped. A `sync` sends what changed between the client's last seen seq and `live_from`,
//! read from the store page by page: the two streams meet at `live_from` (a sync frame may
//! show a message as it is now, with a change that also arrives live; applying both is
//! harmless).
//!
//! Architecture invariant: the connection subscribes to a room before it reads the room's
//! last seq. An event committed after that read is published after the subscription, so
//! it reaches the queue; an event committed before it is covered by the seq that `ready`
//! reports, so it comes through `sync`. After `ready`, only the hub changes the
//! connection's subscriptions; before, the connection leaves alone any room whose
//! membership the hub has changed for it.

mod incoming;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket};
use futures_util::stream::FuturesUnordered;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior, Sleep};
use tokio_util::sync::WaitForCancellationFutureOwned;
use tracing::Instrument;

use self::incoming::{MAX_REQUESTS_IN_FLIGHT, Outcome};
use super::peer::{CloseRequest, Outbound, Peer, PeerPresence, RoomEvent};
use super::protocol::{PresentUser, ServerFrame, catch_up_frame, close_code};
use super::sync::{SyncItem, Syncs};
use crate::app::{App, Session};
use crate::domain::{RoomId, SessionId, Timestamp, User};
use crate::store::{ChangeSpan, StoreError};

/// Queue items written to the socket with one flush.
const MAX_ITEMS_PER_FLUSH: usize = 256;
/// Frames a connection writes before it adds them to the deliveries counter.
const WRITTEN_BATCH: u64 = 64;
/// A write that takes longer than this means the client is not reading.
const WRITE_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a close frame may take to leave.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// Changes read per page when filling a gap.
const GAP_PAGE: u32 = 200;
/// How many times a gap fill asks the store whether it has caught up with the bus, and
/// how long it waits (times the attempt) in between.
const GAP_ATTEMPTS: u32 = 4;
const GAP_RETRY: Duration = Duration::from_millis(100);

/// Serves one upgraded WebSocket until it closes.
///
/// The connection is set up here, before the future starts: a future keeps what an async
/// fn was given for its whole life, beside whatever that was moved into, and the socket
/// and the session would then be held twice by every connection.
pub fn serve(app: App, socket: WebSocket, session: Session) -> impl Future<Output = ()> + Send {
    let span = tracing::info_span!("ws", user_id = %session.user.id, session_id = %session.id);
    let started = Instant::now();
    let closing = app.shutdown_signal().child_token();
    let (peer, queue) =
        app.hub().register(session.user.id, session.id, app.settings().ws_queue, closing);
    let registration = Registration::new(app.clone(), peer.clone());
    span.in_scope(|| tracing::info!(conn = peer.id, "websocket connected"));
    let mut connection = Connection::new(app, socket, peer, queue, session);
    async move {
        // The whole guard, not just the field written below: it must live as long as this.
        let mut registration = registration;
        let closing = connection.run().await;
        Box::pin(connection.close(closing)).await;
        connection.report_written();
        registration.closed_with = closing.code;
        if closing.code == close_code::TOO_SLOW {
            metrics::counter!(crate::metrics::SLOW_CLOSED).increment(1);
        }
        tracing::info!(
            duration_ms = started.elapsed().as_millis() as u64,
            close_code = closing.code,
            reason = closing.reason,
            "websocket closed"
        );
    }
    .instrument(span)
}

/// Removes the connection from the hub however the task ends, and announces the user's
/// presence if this was their last connection. It also keeps the connection counts, so
/// that every connection counted open is counted closed, however it ends.
struct Registration {
    app: App,
    peer: Arc<Peer>,
    /// The code the connection closed with; a task that ends without closing (the runtime
    /// stopping under it) counts as lost.
    closed_with: u16,
}

impl Registration {
    fn new(app: App, peer: Arc<Peer>) -> Self {
        metrics::counter!(crate::metrics::WS_OPENED).increment(1);
        metrics::gauge!(crate::metrics::WS_OPEN).increment(1.0);
        Self { app, peer, closed_with: Closing::lost().code }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let code = crate::metrics::close_code_label(self.closed_with);
        metrics::counter!(crate::metrics::WS_CLOSED, "code" => code).increment(1);
        metrics::gauge!(crate::metrics::WS_OPEN).decrement(1.0);
        let (change, rooms) = self.app.hub().unregister(&self.peer);
        if let Some(change) = change {
            self.app.announce_presence(self.peer.user_id, change, rooms);
        }
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
    const UNAVAILABLE: Self =
        Self::send(close_code::TRY_AGAIN_LATER, "database unavailable: reconnect later");
    const SHUTDOWN: Self =
        Self::send(close_code::RESTARTING, "server shutting down: reconnect now");

    /// How to close after the store failed: later, if it is only out of reach for now.
    fn store_failed(error: &StoreError) -> Self {
        match error {
            StoreError::Unavailable(_) | StoreError::Closed => Self::UNAVAILABLE,
            _ => Self::INTERNAL,
        }
    }

    fn requested(request: CloseRequest) -> Self {
        match request {
            CloseRequest::TooSlow => {
                Self::send(close_code::TOO_SLOW, "too slow: reconnect and sync")
            }
            CloseRequest::SessionEnded => Self::send(close_code::SESSION_ENDED, "session ended"),
            CloseRequest::Shutdown => Self::SHUTDOWN,
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

type Request = Pin<Box<dyn Future<Output = Outcome> + Send>>;

struct Connection {
    app: App,
    socket: WebSocket,
    peer: Arc<Peer>,
    /// Resolves when the hub asks the connection to close or the server shuts down. Made
    /// once and kept: a wait made anew each turn of the loop would take the signal's lock
    /// twice a turn, and be held in the loop's future beside everything else it waits on.
    closed: Pin<Box<WaitForCancellationFutureOwned>>,
    /// When the write under way must have finished: one timer, moved on before each flush
    /// (an atomic store while the deadline only moves later), not one made per flush.
    write_deadline: Pin<Box<Sleep>>,
    /// Items the hub queued for this connection.
    queue: mpsc::Receiver<Outbound>,
    user: User,
    /// The session it stands for: checked once more after registering, see `start`.
    session_id: SessionId,
    session_expires_at: Timestamp,
    cursors: HashMap<RoomId, Cursor>,
    /// Writes the client asked for, running; none while none runs, so that a connection
    /// that only listens holds nothing for them.
    requests: Option<FuturesUnordered<Request>>,
    /// For each room (by the id the client named), the end of the latest `send` to it: the
    /// next one waits for it, so a connection's messages to a room are stored in the order
    /// it sent them (requests otherwise race one another to the store).
    sends: HashMap<String, tokio::sync::oneshot::Receiver<()>>,
    syncs: Syncs,
    /// When this connection last announced typing in each room, to pace it.
    typing_sent: HashMap<RoomId, Instant>,
    /// When the client was last heard from, for the heartbeat.
    last_heard: Instant,
    /// Frames waiting to be written with the next flush.
    outgoing: Vec<WsMessage>,
    /// Counts the frames written: a handle taken once, added to in batches (see
    /// `count_written`), since every connection adding to one counter at every flush
    /// makes the two cores pass its cache line back and forth.
    deliveries: metrics::Counter,
    /// Frames written and not yet added to `deliveries`.
    written: u64,
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
        let closed = Box::pin(peer.closed());
        Self {
            app,
            socket,
            peer,
            closed,
            write_deadline: Box::pin(tokio::time::sleep(WRITE_TIMEOUT)),
            queue,
            user: session.user,
            session_id: session.id,
            session_expires_at: session.expires_at,
            cursors: HashMap::new(),
            requests: None,
            sends: HashMap::new(),
            syncs,
            typing_sent: HashMap::new(),
            last_heard: Instant::now(),
            outgoing: Vec::new(),
            deliveries: metrics::counter!(crate::metrics::DELIVERIES),
            written: 0,
        }
    }

    async fn run(&mut self) -> Closing {
        // What runs once, or rarely, is boxed (`start`, `close`, `fill_gap`, `on_joined`):
        // a task's future is as large as its largest await, so inline, their state would
        // take room in every connection for its whole life (BENCHMARKS.md, "Idle
        // connections, by heap profile").
        if let Err(closing) = Box::pin(self.start()).await {
            return closing;
        }
        self.set_presence(PeerPresence::Online);
        let interval = self.app.settings().heartbeat_interval;
        let mut heartbeat = tokio::time::interval_at(Instant::now() + interval, interval);
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            if let Err(closing) = self.flush().await {
                return closing;
            }
            // Not biased: a room that never falls silent must not starve the client's own
            // frames, its sync or the heartbeat.
            let step = tokio::select! {
                () = &mut self.closed => Err(Closing::requested(self.peer.close_request())),
                // The hub keeps the sender while this connection holds its peer, so the
                // queue never closes under us.
                Some(item) = self.queue.recv() => self.on_outbound(item).await,
                Some(outcome) = next_outcome(&mut self.requests), if self.requests.is_some() => {
                    if self.requests.as_ref().is_some_and(FuturesUnordered::is_empty) {
                        self.requests = None;
                    }
                    self.on_outcome(outcome);
                    Ok(())
                }
                item = self.syncs.next() => {
                    self.on_sync_item(item);
                    Ok(())
                }
                incoming = self.socket.next(), if self.requests_running() < MAX_REQUESTS_IN_FLIGHT => {
                    self.on_incoming(incoming)
                }
                _ = heartbeat.tick() => self.on_heartbeat(),
            };
            if let Err(closing) = step {
                return closing;
            }
        }
    }

    fn requests_running(&self) -> usize {
        self.requests.as_ref().map_or(0, FuturesUnordered::len)
    }

    /// Subscribes to the user's rooms, reads where each stands, and queues `ready` and who
    /// is around.
    async fn start(&mut self) -> Result<(), Closing> {
        let store = self.app.store().clone();
        let hub = self.app.hub().clone();
        let user_id = self.user.id;
        let failed = |error: StoreError| {
            tracing::error!(%error, "could not start a websocket session");
            Closing::store_failed(&error)
        };
        // A session that ended (a logout, an administrator's deactivation) after the
        // upgrade checked it but before the hub registered this connection was announced
        // to nobody here: the store says so now. Any later end reaches the hub.
        let live =
            store.live_sessions(&[self.session_id], Timestamp::now()).await.map_err(failed)?;
        if live.is_empty() {
            return Err(Closing::requested(CloseRequest::SessionEnded));
        }
        // Subscribe first, read the seqs second (see the invariant at the top). Membership
        // may change meanwhile: a room whose change the hub has dispatched to this
        // connection is left as the hub set it, since that change is newer than either
        // read; any later change is the hub's to apply. So a room joined between the reads
        // is subscribed (by the hub, or here) and one left between them is not.
        for room in store.member_rooms(user_id).await.map_err(failed)? {
            hub.subscribe_at_start(&self.peer, room);
        }
        let cursors = store.room_cursors(user_id).await.map_err(failed)?;
        for cursor in &cursors {
            hub.subscribe_at_start(&self.peer, cursor.room_id);
        }
        hub.started(&self.peer);
        // What was queued while we read is older than what we read: state of the moment
        // (counts, receipts, presence) is in `ready` already and would only undo it. Room
        // events and membership changes are kept; their cursors sort them out.
        let mut early = Vec::new();
        while let Ok(item) = self.queue.try_recv() {
            if !matches!(item, Outbound::Moment(_)) {
                early.push(item);
            }
        }
        self.cursors = cursors
            .iter()
            .map(|c| (c.room_id, Cursor { live_from: c.last_seq, delivered: c.last_seq }))
            .collect();
        let heartbeat_interval_ms = self.app.settings().heartbeat_interval.as_millis() as u64;
        let ready = ServerFrame::Ready {
            user: &self.user,
            rooms: &cursors,
            total_unread: cursors.iter().map(|c| c.unread.unread_count).sum(),
            total_mentions: cursors.iter().map(|c| c.unread.mention_count).sum(),
            heartbeat_interval_ms,
        };
        self.outgoing.push(WsMessage::Text(ready.to_text()));
        let rooms: Vec<RoomId> = self.cursors.keys().copied().collect();
        self.push_presence_snapshot(None, &rooms);
        for item in early {
            self.handle_outbound(item).await?;
        }
        Ok(())
    }

    /// Who is around in `rooms`, as one frame.
    fn push_presence_snapshot(&mut self, room_id: Option<RoomId>, rooms: &[RoomId]) {
        let users: Vec<PresentUser> = self
            .app
            .hub()
            .present_in(rooms, self.user.id)
            .into_iter()
            .map(|(user_id, status)| PresentUser { user_id, status })
            .collect();
        self.push(ServerFrame::PresenceSnapshot { room_id, users: &users });
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
            Outbound::Event(event) => {
                let RoomEvent { room_id, seq, ref frame } = *event;
                let Some(cursor) = self.cursors.get(&room_id).copied() else {
                    return Ok(()); // Not (or no longer) a member.
                };
                if seq <= cursor.delivered {
                    return Ok(()); // Already sent, or covered by `sync`.
                }
                if seq > cursor.delivered + 1 {
                    Box::pin(self.fill_gap(room_id, cursor.delivered, seq - 1)).await?;
                }
                self.outgoing.push(WsMessage::Text(frame.clone()));
                if let Some(cursor) = self.cursors.get_mut(&room_id) {
                    cursor.delivered = cursor.delivered.max(seq);
                }
            }
            Outbound::Moment(moment) => {
                if moment.room_id.is_none_or(|room| self.cursors.contains_key(&room)) {
                    self.outgoing.push(WsMessage::Text(moment.frame.clone()));
                }
            }
            Outbound::Head(head) => {
                if let Some(cursor) = self.cursors.get(&head.room_id).copied()
                    && head.seq > cursor.delivered
                {
                    Box::pin(self.fill_gap(head.room_id, cursor.delivered, head.seq)).await?;
                }
            }
            Outbound::Joined(room_id) => Box::pin(self.on_joined(room_id)).await?,
            Outbound::Left(room_id) => {
                if self.cursors.remove(&room_id).is_some() {
                    self.typing_sent.remove(&room_id);
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
                self.push_presence_snapshot(Some(room_id), &[room_id]);
            }
            // Left again already; the hub has queued the `Left` after this.
            Ok(_) => {}
            Err(error) => {
                // Without its start the room would stay silent; a reconnect repairs that.
                tracing::error!(%error, %room_id, "could not start a joined room's stream");
                return Err(Closing::store_failed(&error));
            }
        }
        Ok(())
    }

    /// Sends, from the store, what changed in a room in `(delivered, up_to]`, before a live
    /// event that skipped those seqs (or when `realtime::repair` finds the bus lost some).
    /// A single-node bus never skips; a networked one may lose an event or deliver two
    /// nodes' events out of order, and this keeps the stream whole regardless.
    ///
    /// The cursor moves to `up_to` only once the store has shown that it holds the room up
    /// to there: a store that lags behind the bus (a replica, say) would otherwise return
    /// too little, and the seqs it lacked would be skipped for good.
    async fn fill_gap(
        &mut self,
        room_id: RoomId,
        delivered: i64,
        up_to: i64,
    ) -> Result<(), Closing> {
        tracing::debug!(%room_id, delivered, up_to, "filling a gap in a room's stream");
        self.wait_for_store(room_id, up_to).await?;
        let mut after = delivered;
        loop {
            let changes = self
                .app
                .store()
                .changes(room_id, ChangeSpan { since: delivered, up_to, after, limit: GAP_PAGE })
                .await
                .map_err(|error| {
                    // Sending on with a hole would break the promise; a reconnect won't.
                    tracing::error!(%error, %room_id, "could not fill a gap");
                    Closing::store_failed(&error)
                })?;
            let Some(last) = changes.last() else { break };
            after = last.changed_seq;
            let frames = changes.iter().map(|c| catch_up_frame(delivered, up_to, c));
            self.outgoing.extend(frames.map(WsMessage::Text));
            // A large gap leaves page by page, not all at once.
            self.flush().await?;
        }
        if let Some(cursor) = self.cursors.get_mut(&room_id) {
            cursor.delivered = cursor.delivered.max(up_to);
        }
        metrics::counter!(crate::metrics::GAPS_FILLED).increment(1);
        Ok(())
    }

    /// Waits (briefly) until the store holds `room_id` up to `seq`, or gives up on the
    /// connection, which then resumes from what it was sent.
    async fn wait_for_store(&mut self, room_id: RoomId, seq: i64) -> Result<(), Closing> {
        for attempt in 1..=GAP_ATTEMPTS {
            let heads = self.app.store().room_heads(&[room_id]).await.map_err(|error| {
                tracing::error!(%error, %room_id, "could not fill a gap");
                Closing::store_failed(&error)
            })?;
            if heads.iter().any(|(room, head)| *room == room_id && *head >= seq) {
                return Ok(());
            }
            if attempt < GAP_ATTEMPTS {
                tokio::time::sleep(GAP_RETRY * attempt).await;
            }
        }
        tracing::warn!(%room_id, seq, "the store lags behind the bus; the client must resume");
        Err(Closing::UNAVAILABLE)
    }

    fn on_sync_item(&mut self, item: SyncItem) {
        match item {
            // A room left while its sync was under way gets nothing more.
            SyncItem::Frames(room_id, frames) => {
                if self.cursors.contains_key(&room_id) {
                    metrics::counter!(crate::metrics::EVENTS_REPLAYED)
                        .increment(frames.len() as u64);
                    self.outgoing.extend(frames.into_iter().map(WsMessage::Text));
                }
            }
            SyncItem::Failed(error, client_id) => {
                tracing::error!(%error, "sync failed");
                self.push_error_for(
                    client_id.as_deref(),
                    "sync_failed",
                    "The server could not finish the sync; send it again.",
                );
            }
            SyncItem::Done(id) => self.push(ServerFrame::SyncDone { id: id.as_deref() }),
        }
    }

    /// Adds frames written to the deliveries counter, every `WRITTEN_BATCH` frames (and at
    /// each heartbeat and at the end, `report_written`).
    fn count_written(&mut self, count: u64) {
        self.written += count;
        if self.written >= WRITTEN_BATCH {
            self.report_written();
        }
    }

    fn report_written(&mut self) {
        self.deliveries.increment(std::mem::take(&mut self.written));
    }

    fn on_heartbeat(&mut self) -> Result<(), Closing> {
        self.report_written();
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

    /// Writes every waiting frame and flushes once. Gives up when the client does not take
    /// them in time, when the hub asks the connection to close, or at shutdown.
    async fn flush(&mut self) -> Result<(), Closing> {
        if self.outgoing.is_empty() {
            return Ok(());
        }
        self.write_deadline.as_mut().reset(Instant::now() + WRITE_TIMEOUT);
        let socket = &mut self.socket;
        let count = self.outgoing.len() as u64;
        // Taken, not drained: a connection between writes holds no list of frames.
        let frames = std::mem::take(&mut self.outgoing);
        let write = async move {
            for frame in frames {
                socket.feed(frame).await?;
            }
            socket.flush().await
        };
        // A frame handed to the socket is buffered whole, so a close frame sent after an
        // interrupted write still follows complete frames.
        // Biased, the write first: it usually completes at once, and then neither the close
        // signal nor the timer is looked at (each look takes a lock or an atomic).
        tokio::select! {
            biased;
            written = write => {
                written.map_err(|_| Closing::lost())?;
                self.count_written(count);
                Ok(())
            }
            () = &mut self.closed => Err(Closing::requested(self.peer.close_request())),
            () = self.write_deadline.as_mut() => Err(Closing::requested(CloseRequest::TooSlow)),
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

/// The next outcome of the client's requests running, if any run.
fn next_outcome(
    requests: &mut Option<FuturesUnordered<Request>>,
) -> impl Future<Output = Option<Outcome>> + '_ {
    std::future::poll_fn(move |cx| match requests {
        Some(running) => running.poll_next_unpin(cx),
        None => std::task::Poll::Ready(None),
    })
}
