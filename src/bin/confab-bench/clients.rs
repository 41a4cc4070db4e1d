//! The WebSocket clients: opening thousands of connections (from several loopback source
//! addresses, since one address has only so many ports), and each connection's task,
//! which writes what its sender schedules and reads and counts what arrives.
//!
//! A benchmark message's body starts with `~b <step> <n> <scheduled µs>`: which step sent
//! it, its number from its room's sender, and when the schedule meant it to go, so that
//! latency counts from the schedule, not from when a backed-up client got round to it.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpSocket;
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

use crate::setup::Seat;
use crate::stats::{Arrival, Clock, Order, Tally};
use crate::storm::{Blip, Storm};

pub type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// What every connection task shares.
pub struct Shared {
    pub clock: Clock,
    /// One tally per step, indexed by the step number in the body.
    pub steps: Vec<Tally>,
    /// `error` frames from the server.
    pub error_frames: AtomicU64,
    /// Connections that ended before the run did, by why.
    pub closed: Mutex<BTreeMap<String, u64>>,
    pub stop: CancellationToken,
    /// The connections that drop and reconnect in each step, if any do.
    pub storm: Option<Storm>,
}

impl Shared {
    /// Shared state for a run of `steps` steps, its clock starting now.
    pub fn new(steps: usize) -> Arc<Self> {
        Self::with_storm(steps, None)
    }

    /// The same, with a reconnect storm in each step.
    pub fn with_storm(steps: usize, storm: Option<Storm>) -> Arc<Self> {
        Arc::new(Self {
            clock: Clock::start(),
            steps: (0..steps).map(|_| Tally::new()).collect(),
            error_frames: AtomicU64::new(0),
            closed: Mutex::default(),
            stop: CancellationToken::new(),
            storm,
        })
    }

    pub fn closed_early(&self) -> u64 {
        self.closed.lock().unwrap_or_else(|p| p.into_inner()).values().sum()
    }

    pub fn note_close(&self, why: String) {
        if !self.stop.is_cancelled() {
            *self.closed.lock().unwrap_or_else(|p| p.into_inner()).entry(why).or_default() += 1;
        }
    }
}

/// Where to connect, and how.
#[derive(Clone)]
pub struct Target {
    /// Each node's address; a connection goes to one of them by its seat.
    pub servers: Vec<SocketAddr>,
    /// Source addresses to spread connections over (127.0.0.1, 127.0.0.2, …).
    pub sources: usize,
    /// Confab's WebSocket path, or the ceiling's (which takes the room in its query).
    pub ceiling: bool,
    /// Connections opened to each node, in the order of `servers`.
    pub opened: Arc<Vec<AtomicU64>>,
}

impl Target {
    pub fn new(servers: Vec<SocketAddr>, ceiling: bool) -> Self {
        let opened = Arc::new(servers.iter().map(|_| AtomicU64::new(0)).collect());
        Self { servers, sources: 1, ceiling, opened }
    }

    /// How many connections were opened to each node.
    pub fn opened(&self) -> Vec<u64> {
        self.opened.iter().map(|count| count.load(Ordering::Relaxed)).collect()
    }
}

/// A connection ready for the run: its task is reading; `outbox` takes frames to send.
pub struct Connection {
    pub outbox: mpsc::UnboundedSender<String>,
}

/// Opens connection `index` for `seat` and starts its task; returns once the server has
/// said `ready`. Each confirmation of one of its messages adds a permit to `acks`.
pub async fn open(
    target: &Target,
    index: usize,
    seat: &Seat,
    shared: Arc<Shared>,
    acks: Option<Arc<Semaphore>>,
) -> Result<Connection> {
    let socket = connect(target, index, seat).await?;
    target.opened[node_of(target, seat)].fetch_add(1, Ordering::Relaxed);
    let (outbox, rx) = mpsc::unbounded_channel();
    let (ready_tx, ready_rx) = oneshot::channel();
    let storm = shared
        .storm
        .as_ref()
        .filter(|storm| storm.includes(index))
        .map(|storm| storm.client(target, seat));
    tokio::spawn(run(socket, index, rx, ready_tx, shared, acks, storm));
    ready_rx.await.context("the connection closed before ready")?;
    Ok(Connection { outbox })
}

/// The node a seat's connection goes to. A room's members alternate between the nodes, and
/// its sender is on node room mod N, so that every room's events cross from node to node.
fn node_of(target: &Target, seat: &Seat) -> usize {
    (seat.room + seat.rank) % target.servers.len()
}

/// Opens a WebSocket for `seat`, the `index`th connection, and upgrades it.
pub async fn connect(target: &Target, index: usize, seat: &Seat) -> Result<Socket> {
    let last = u8::try_from(1 + index % target.sources.max(1)).unwrap_or(1);
    let source = IpAddr::V4(Ipv4Addr::new(127, 0, 0, last));
    let tcp = TcpSocket::new_v4()?;
    // Binding picks a port unused on the source address whatever the destination, so the
    // last run's ports, lingering in TIME_WAIT for a minute, are out of reach; connecting
    // unbound picks one unused towards this destination. Bind only to spread over sources.
    if target.sources > 1 {
        tcp.set_reuseaddr(true)?;
        tcp.bind(SocketAddr::new(source, 0)).with_context(|| format!("binding {source}"))?;
    }
    let server = target.servers[node_of(target, seat)];
    let stream = tcp.connect(server).await.context("connecting")?;
    stream.set_nodelay(true)?;
    let path =
        if target.ceiling { format!("/ws?room={}", seat.room_id) } else { "/api/v1/ws".to_owned() };
    let mut request = format!("ws://{server}{path}").into_client_request()?;
    if let Some(token) = &seat.token {
        request
            .headers_mut()
            .insert("authorization", HeaderValue::from_str(&format!("Bearer {token}"))?);
    }
    // The generator holds as many sockets as the server: small buffers here too.
    let config = WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_write_buffer_size(1024 * 1024);
    let (socket, _) = tokio_tungstenite::client_async_with_config(
        request,
        MaybeTlsStream::Plain(stream),
        Some(config),
    )
    .await
    .context("WebSocket handshake")?;
    Ok(socket)
}

/// A connection's task: writes what its outbox holds, reads and counts what arrives. A
/// storm connection drops its socket at each blip and carries on over a new one.
async fn run(
    mut socket: Socket,
    index: usize,
    mut outbox: mpsc::UnboundedReceiver<String>,
    ready: oneshot::Sender<()>,
    shared: Arc<Shared>,
    acks: Option<Arc<Semaphore>>,
    storm: Option<(crate::storm::Client, watch::Receiver<Option<Blip>>)>,
) {
    let (mut storm, mut blips) = storm.unzip();
    let mut ready = Some(ready);
    let mut order = Order::default();
    // Waited on once for the whole life of the connection, not once per frame: each wait
    // on a token every task shares takes that token's lock.
    let stop = shared.stop.clone().cancelled_owned();
    tokio::pin!(stop);
    loop {
        let (mut sink, mut stream) = socket.split();
        let blip = loop {
            tokio::select! {
                () = &mut stop => {
                    let _ = sink.send(Message::Close(None)).await;
                    return;
                }
                blip = next_blip(&mut blips) => break blip,
                frame = outbox.recv() => {
                    let Some(frame) = frame else { return };
                    // Gather what else is due into the same write.
                    let mut result = sink.feed(Message::text(frame)).await;
                    while let (Ok(()), Ok(more)) = (&result, outbox.try_recv()) {
                        result = sink.feed(Message::text(more)).await;
                    }
                    if let Err(error) = result.and(sink.flush().await) {
                        shared.note_close(format!("write failed: {error}"));
                        return;
                    }
                }
                frame = stream.next() => match frame {
                    Some(Ok(Message::Text(text))) => {
                        let is_ready = text.starts_with(r#"{"type":"ready""#);
                        if let (true, Some(ready)) = (is_ready, ready.take()) {
                            let _ = ready.send(());
                        }
                        if let Some(storm) = &mut storm {
                            if let Some(reply) = storm.arrived(&text, index, &shared)
                                && let Err(error) = sink.send(Message::text(reply)).await
                            {
                                shared.note_close(format!("write failed: {error}"));
                                return;
                            }
                        } else if !is_ready {
                            let ack = arrived(&text, index, &mut order, &shared);
                            if let (true, Some(acks)) = (ack, &acks) {
                                acks.add_permits(1);
                            }
                        }
                    }
                    Some(Ok(Message::Close(frame))) => {
                        let why = frame.map_or("closed".to_owned(), |f| format!("closed {} {}", u16::from(f.code), f.reason));
                        shared.note_close(why);
                        return;
                    }
                    Some(Ok(_)) => {}
                    Some(Err(error)) => {
                        shared.note_close(format!("read failed: {error}"));
                        return;
                    }
                    None => {
                        shared.note_close("ended".to_owned());
                        return;
                    }
                }
            }
        };
        // The socket goes without a close frame, as a dropped network leaves it.
        drop((sink, stream));
        let Some(client) = &mut storm else { return };
        socket = match client.reconnect(blip, index, &shared).await {
            Ok(socket) => socket,
            Err(error) => {
                shared.note_close(format!("reconnecting failed: {error:#}"));
                return;
            }
        };
    }
}

/// The next drop of a storm connection; never, for the others.
async fn next_blip(blips: &mut Option<watch::Receiver<Option<Blip>>>) -> Blip {
    if let Some(blips) = blips {
        while blips.changed().await.is_ok() {
            if let Some(blip) = *blips.borrow_and_update() {
                return blip;
            }
        }
    }
    std::future::pending().await
}

/// Counts one frame from the server; true if it confirms one of this connection's sends.
fn arrived(text: &str, index: usize, order: &mut Order, shared: &Shared) -> bool {
    let now = shared.clock.now_us();
    if text.starts_with(r#"{"type":"error""#) {
        shared.error_frames.fetch_add(1, Ordering::Relaxed);
        return false;
    }
    let ack = text.starts_with(r#"{"type":"message.ack""#);
    let delivery =
        text.starts_with(r#"{"type":"message.created""#) || text.starts_with(r#"{"type":"send""#);
    if !ack && !delivery {
        return false;
    }
    let Some(marker) = Marker::find(text) else { return false };
    let Some(tally) = shared.steps.get(marker.step) else { return false };
    if ack {
        tally.record_confirmation(index, marker.scheduled_us, now);
        return true;
    }
    match order.arrive(marker.n) {
        Arrival::InOrder => {}
        Arrival::Late => {
            tally.out_of_order.fetch_add(1, Ordering::Relaxed);
        }
        Arrival::Duplicate => {
            tally.duplicates.fetch_add(1, Ordering::Relaxed);
            return false;
        }
    }
    tally.delivered.fetch_add(1, Ordering::Relaxed);
    tally.record_delivery(index, marker.scheduled_us, now);
    if shared.storm.is_some() {
        tally.storm.record_other(index, marker.scheduled_us, now);
    }
    false
}

/// A `send` frame, with `type` first: the ceiling echoes frames as they are, and
/// receivers tell deliveries by how they start.
pub fn send_frame(room_id: &str, body: &str, client_id: &str) -> String {
    let quoted = |text: &str| serde_json::Value::from(text).to_string();
    format!(
        r#"{{"type":"send","room_id":{},"body":{},"client_id":{}}}"#,
        quoted(room_id),
        quoted(body),
        quoted(client_id)
    )
}

/// The numbers at the start of a benchmark message's body, or in its client id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marker {
    pub step: usize,
    pub n: u64,
    pub scheduled_us: u64,
}

impl Marker {
    const PREFIX: &'static str = "~b ";
    /// The same numbers in a `client_id` (which holds no spaces), for messages whose body
    /// is real text: a confirmation carries the client id before the message.
    const ID_PREFIX: &'static str = "~b.";

    /// A body of `size` bytes (at least the marker's) carrying the marker.
    pub fn body(&self, size: usize) -> String {
        let mut body = format!("{}{} {} {} ", Self::PREFIX, self.step, self.n, self.scheduled_us);
        while body.len() < size {
            body.push('x');
        }
        body
    }

    /// A client id carrying the marker.
    pub fn client_id(&self) -> String {
        format!("{}{}.{}.{}.", Self::ID_PREFIX, self.step, self.n, self.scheduled_us)
    }

    /// The first marker in `text`, in either form.
    pub fn find(text: &str) -> Option<Self> {
        let in_body = text.find(Self::PREFIX).map(|at| (at + Self::PREFIX.len(), ' '));
        let in_id = text.find(Self::ID_PREFIX).map(|at| (at + Self::ID_PREFIX.len(), '.'));
        let (at, separator) = match (in_body, in_id) {
            (Some(body), Some(id)) => body.min(id),
            (body, id) => body.or(id)?,
        };
        let mut numbers = text[at..].splitn(4, separator);
        Some(Self {
            step: numbers.next()?.parse().ok()?,
            n: numbers.next()?.parse().ok()?,
            scheduled_us: numbers.next()?.parse().ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_survives_a_body_and_a_frame() {
        let marker = Marker { step: 2, n: 17, scheduled_us: 123_456 };
        let body = marker.body(100);
        assert_eq!(body.len(), 100);
        let frame = format!(r#"{{"type":"message.created","message":{{"body":"{body}"}}}}"#);
        assert_eq!(Marker::find(&frame), Some(marker));
        assert_eq!(Marker::find(r#"{"body":"~b 1 x"}"#), None);
        let ack = format!(
            r#"{{"type":"message.ack","client_id":"{}","message":{{"body":"~b 9 9 9 "}}}}"#,
            marker.client_id()
        );
        assert_eq!(Marker::find(&ack), Some(marker));
    }
}
