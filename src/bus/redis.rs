//! The bus between nodes: Redis pub/sub on one channel.
//!
//! Publishing hands the event to this node's hub at once (so a node's own users never wait
//! on Redis, and go on chatting among themselves while it is away) and queues its encoded
//! bytes for the publisher task, which sends whatever is queued as one pipeline. One
//! subscriber task per process receives every node's events and feeds the others' to the
//! hub. Both tasks reconnect by themselves, with backoff; an outage is logged once when it
//! begins and once when it ends, and `/readyz` fails meanwhile.
//!
//! Redis pub/sub delivers at most once: what is published while a node is cut off never
//! reaches it. The bus makes no attempt to hide that. Room events lost are read from the
//! database (`realtime::repair`, and the connections' gap filling); presence, which is
//! stored nowhere, is published again whenever a node (re)joins the channel (`Hello`), and
//! a node heard nothing from for [`NODE_SILENCE`] is taken to be dead, its users' presence
//! with it. Each node hears its own `Alive` come back: a subscription that stops hearing
//! it is dead even if its socket looks open, and is made again.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use redis::aio::MultiplexedConnection;
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::wire::{self, Envelope};
use super::{Bus, BusEvent, NodeId};
use crate::realtime::Hub;

/// The one channel every node publishes on and subscribes to.
const CHANNEL: &str = "confab:events";
/// Encoded events waiting for the publisher. Beyond this (Redis is slower than the node
/// produces events, for long), events are dropped and repaired like any lost event.
const OUTBOX: usize = 65_536;
/// Events sent to Redis as one pipeline at most.
const BATCH: usize = 512;
/// How long connecting, or a pipeline of publishes, may take.
const REDIS_PATIENCE: Duration = Duration::from_secs(5);
/// How often a node says it is alive.
pub const ALIVE_INTERVAL: Duration = Duration::from_secs(5);
/// A node not heard from for this long is taken to be dead: its users' presence goes. A
/// node's word on a user not repeated for this long lapses too.
pub const NODE_SILENCE: Duration = Duration::from_secs(20);
/// Every node repeats what it says of its users' presence this often (in heartbeats):
/// 10 s, twice within [`NODE_SILENCE`].
const PRESENCE_REPEAT_BEATS: u32 = 2;
/// A subscription that has not heard this node's own `Alive` for this long is dead.
const SELF_SILENCE: Duration = Duration::from_secs(15);
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

pub struct RedisBus {
    node: NodeId,
    hub: Arc<Hub>,
    outbox: mpsc::Sender<Bytes>,
    link: Arc<Link>,
}

/// What the two tasks know of Redis, for readiness and for logging an outage once.
#[derive(Default)]
struct Link {
    publishing: AtomicBool,
    subscribed: AtomicBool,
    /// Events not sent because Redis was away or too slow (lost for the other nodes).
    dropped: AtomicU64,
    /// Rung when the subscription is made (again): whatever was published meanwhile is
    /// lost to this node and must be repaired now.
    rejoined: Notify,
}

impl RedisBus {
    /// Starts the bus's tasks (on `tasks`, until `shutdown`). Redis need not be reachable
    /// yet: the node serves its own users meanwhile, and `/readyz` says it is not ready.
    pub fn start(
        url: &str,
        hub: Arc<Hub>,
        tasks: &TaskTracker,
        shutdown: CancellationToken,
    ) -> Result<Arc<Self>, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let (outbox, queued) = mpsc::channel(OUTBOX);
        let bus = Arc::new(Self { node: hub.node(), hub, outbox, link: Arc::new(Link::default()) });
        tasks.spawn(publisher(client.clone(), queued, bus.link.clone(), shutdown.clone()));
        tasks.spawn(subscriber(client, bus.clone(), shutdown.clone()));
        tasks.spawn(heartbeat(bus.clone(), shutdown));
        Ok(bus)
    }

    /// Resolves when the subscription has been made again after an outage (or for the
    /// first time): events published meanwhile never reached this node. For one waiter.
    pub async fn rejoined(&self) {
        self.link.rejoined.notified().await;
    }

    fn send(&self, envelope: &Envelope) {
        if !self.link.publishing.load(Ordering::Relaxed) {
            self.link.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let bytes = Bytes::from(wire::encode(self.node, envelope));
        if self.outbox.try_send(bytes).is_err() {
            self.link.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Publishes again what this node's users' presence is, for nodes that may have
    /// missed it (they were cut off, or took this node for dead).
    fn republish_presence(&self) {
        for event in self.hub.local_presence() {
            self.send(&Envelope::Event(event));
        }
    }

    /// Handles what another node said.
    fn receive(&self, from: NodeId, envelope: Envelope) {
        match envelope {
            Envelope::Event(event) => {
                metrics::counter!(crate::metrics::BUS_RECEIVED).increment(1);
                if matches!(event, BusEvent::Presence { .. }) {
                    self.hub.node_heard(from);
                }
                self.hub.dispatch(event);
            }
            Envelope::Alive => {
                if !self.hub.node_heard(from) {
                    // A node this one took for dead (or never heard of): ask every node,
                    // that one included, to say again who is around, and say it for this
                    // one.
                    tracing::info!(node = %from, "a node joined the bus");
                    self.send(&Envelope::Hello);
                    self.republish_presence();
                }
            }
            Envelope::Hello => {
                self.hub.node_heard(from);
                self.republish_presence();
            }
        }
    }
}

impl Bus for RedisBus {
    fn publish(&self, event: BusEvent) {
        self.send(&Envelope::Event(event.clone()));
        self.hub.dispatch(event);
    }

    fn connected(&self) -> bool {
        self.link.publishing.load(Ordering::Relaxed) && self.link.subscribed.load(Ordering::Relaxed)
    }

    fn is_shared(&self) -> bool {
        true
    }
}

/// Publishes `events` on the channel as a node would, for a process that is no node
/// (`confab admin`, which changed the store and must tell the nodes): no subscription, no
/// heartbeat, and the events wait for Redis rather than being dropped while it is away.
/// Returns once Redis has taken them all.
pub async fn publish_once(url: &str, events: Vec<BusEvent>) -> Result<(), redis::RedisError> {
    let client = redis::Client::open(url)?;
    let mut connection = connect(&client).await?;
    let node = NodeId::generate();
    for event in events {
        let bytes = wire::encode(node, &Envelope::Event(event));
        let _receivers: i64 =
            redis::cmd("PUBLISH").arg(CHANNEL).arg(bytes).query_async(&mut connection).await?;
    }
    Ok(())
}

/// Logs a change of a link's state once: when an outage begins and when it ends.
fn set_state(flag: &AtomicBool, up: bool, what: &str, link: &Link) {
    let was = flag.swap(up, Ordering::Relaxed);
    match (was, up) {
        (false, true) => {
            let dropped = link.dropped.swap(0, Ordering::Relaxed);
            tracing::info!(dropped, "redis {what}: connected");
        }
        (true, false) => tracing::warn!("redis {what}: connection lost; retrying"),
        _ => {}
    }
}

async fn connect(client: &redis::Client) -> Result<MultiplexedConnection, redis::RedisError> {
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(REDIS_PATIENCE))
        .set_response_timeout(Some(REDIS_PATIENCE));
    client.get_multiplexed_async_connection_with_config(&config).await
}

/// Sends queued events to Redis, in order, a pipeline at a time.
async fn publisher(
    client: redis::Client,
    mut queued: mpsc::Receiver<Bytes>,
    link: Arc<Link>,
    shutdown: CancellationToken,
) {
    let mut backoff = BACKOFF_MIN;
    let mut first_failure = true;
    loop {
        let mut connection = tokio::select! {
            () = shutdown.cancelled() => return,
            connected = connect(&client) => match connected {
                Ok(connection) => connection,
                Err(error) => {
                    if first_failure {
                        tracing::warn!(%error, "redis publishing: cannot connect; retrying");
                        first_failure = false;
                    }
                    // Whatever waits is dropped: the other nodes repair it, and sending it
                    // late would only be older than what they repaired.
                    while queued.try_recv().is_ok() {
                        link.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                    if !back_off(&mut backoff, &shutdown).await {
                        return;
                    }
                    continue;
                }
            },
        };
        first_failure = true;
        set_state(&link.publishing, true, "publishing", &link);
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            let received = tokio::select! {
                // What the node said last (its users going offline as it stops) still goes.
                () = shutdown.cancelled() => {
                    while batch.len() < BATCH && let Ok(bytes) = queued.try_recv() {
                        batch.push(bytes);
                    }
                    let _ = publish(&mut connection, &mut batch).await;
                    return;
                }
                received = queued.recv_many(&mut batch, BATCH) => received,
            };
            if received == 0 {
                return; // The bus is gone.
            }
            if publish(&mut connection, &mut batch).await {
                // Only a publish that went through ends an outage: a connection that is
                // made and then refused every publish must not be made again at once.
                backoff = BACKOFF_MIN;
                continue;
            }
            link.dropped.fetch_add(received as u64, Ordering::Relaxed);
            set_state(&link.publishing, false, "publishing", &link);
            if !back_off(&mut backoff, &shutdown).await {
                return;
            }
            break;
        }
    }
}

/// Waits `backoff` before trying Redis again, and doubles it for the next time (up to
/// [`BACKOFF_MAX`]); false if the node stops meanwhile.
async fn back_off(backoff: &mut Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        () = shutdown.cancelled() => return false,
        () = tokio::time::sleep(*backoff) => {}
    }
    *backoff = (*backoff * 2).min(BACKOFF_MAX);
    true
}

/// Sends `batch` as one pipeline (emptying it); whether Redis took it all.
async fn publish(connection: &mut MultiplexedConnection, batch: &mut Vec<Bytes>) -> bool {
    if batch.is_empty() {
        return true;
    }
    let count = batch.len() as u64;
    let mut pipe = redis::pipe();
    for bytes in batch.drain(..) {
        pipe.cmd("PUBLISH").arg(CHANNEL).arg(bytes.as_ref()).ignore();
    }
    let sent = tokio::time::timeout(REDIS_PATIENCE, pipe.query_async::<()>(connection)).await;
    let sent = matches!(sent, Ok(Ok(())));
    if sent {
        // Envelopes, the nodes' own Alive and Hello among them.
        metrics::counter!(crate::metrics::BUS_PUBLISHED).increment(count);
    }
    sent
}

/// Receives every node's events on one subscription, and makes it again when it breaks.
async fn subscriber(client: redis::Client, bus: Arc<RedisBus>, shutdown: CancellationToken) {
    let lag_own = metrics::histogram!(crate::metrics::BUS_LAG_SECONDS, "origin" => "own");
    let lag_other = metrics::histogram!(crate::metrics::BUS_LAG_SECONDS, "origin" => "other");
    let mut backoff = BACKOFF_MIN;
    let mut first_failure = true;
    loop {
        let subscribed = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(CHANNEL).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        let pubsub = tokio::select! {
            () = shutdown.cancelled() => return,
            made = tokio::time::timeout(REDIS_PATIENCE, subscribed) => made,
        };
        let mut messages = match pubsub {
            Ok(Ok(pubsub)) => pubsub.into_on_message(),
            failed => {
                if first_failure {
                    let error = match failed {
                        Ok(Err(error)) => error.to_string(),
                        _ => "timed out".to_owned(),
                    };
                    tracing::warn!(%error, "redis subscription: cannot subscribe; retrying");
                    first_failure = false;
                }
                if !back_off(&mut backoff, &shutdown).await {
                    return;
                }
                continue;
            }
        };
        first_failure = true;
        let made = Instant::now();
        set_state(&bus.link.subscribed, true, "subscription", &bus.link);
        // Everything published while this node was not listening is lost to it: say so
        // to the other nodes (they publish their presence again) and to the repairs.
        bus.send(&Envelope::Hello);
        bus.republish_presence();
        bus.link.rejoined.notify_one();
        let mut heard_self = Instant::now();
        loop {
            let message = tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep_until(heard_self + SELF_SILENCE) => {
                    tracing::warn!("redis subscription: this node's own heartbeat stopped coming back");
                    break;
                }
                message = messages.next() => message,
            };
            let Some(message) = message else { break };
            let bytes = Bytes::copy_from_slice(message.get_payload_bytes());
            let received = match wire::decode(bytes) {
                Ok(received) => received,
                Err(error) => {
                    tracing::warn!(%error, "ignored a bus message that is not ours");
                    continue;
                }
            };
            let own = received.from == bus.node;
            if let Some(lag) = received.lag() {
                if own { &lag_own } else { &lag_other }.record(lag);
            }
            match received.envelope {
                Envelope::Alive if own => heard_self = Instant::now(),
                _ if own => {}
                envelope => bus.receive(received.from, envelope),
            }
        }
        set_state(&bus.link.subscribed, false, "subscription", &bus.link);
        // A subscription that lasted is made again at once; one that keeps breaking (Redis
        // drops this node for reading too slowly, say) waits longer each time, or its
        // `Hello`s would make the whole cluster repeat itself in a loop.
        if made.elapsed() >= SELF_SILENCE {
            backoff = BACKOFF_MIN;
        }
        if !back_off(&mut backoff, &shutdown).await {
            return;
        }
    }
}

/// Says every [`ALIVE_INTERVAL`] that this node is alive, and every [`PRESENCE_REPEAT_BEATS`] heartbeats
/// what its users' presence is; takes back the presence of nodes not heard from for
/// [`NODE_SILENCE`], and any word on a user not repeated for as long. Saying it again is
/// what makes presence right after anything was lost (a `Hello` itself, an announcement
/// that a user left): a word not repeated lapses, a word repeated reaches a node that
/// missed it.
async fn heartbeat(bus: Arc<RedisBus>, shutdown: CancellationToken) {
    let mut interval = tokio::time::interval(ALIVE_INTERVAL);
    let mut beats = 0u32;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = interval.tick() => {}
        }
        bus.send(&Envelope::Alive);
        beats = beats.wrapping_add(1);
        if beats.is_multiple_of(PRESENCE_REPEAT_BEATS) {
            bus.republish_presence();
        }
        for node in bus.hub.forget_silent_nodes(NODE_SILENCE) {
            tracing::warn!(%node, "a node fell silent; its users' presence is taken back");
        }
    }
}
