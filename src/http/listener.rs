//! Accepting connections so that nobody can hold them all: a limit on connections overall
//! and per client address, counted until the socket closes (a WebSocket counts as long as
//! it is open); a spare file descriptor, so that a process out of descriptors still takes
//! the waiting connection and refuses it politely instead of leaving it to hang; and a
//! back-off on accept errors instead of a busy loop.
//!
//! A refused client gets a short HTTP answer (429 for its address's limit, 503 when the
//! node is full, both with `Retry-After`) and the connection is closed. Addresses of
//! trusted proxies carry many clients and are held only to the overall limit; IPv6
//! clients are counted by their /64, which one household or one attacker holds whole.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use crate::config::ConnectionLimits;
use crate::http::extract::is_trusted;

/// After the process last ran out of descriptors, how long readiness says it is full.
const EXHAUSTION_MEMORY: Duration = Duration::from_secs(5);
/// What a refused client is told to wait, in seconds.
const REFUSED_RETRY_SECS: u64 = 5;
/// The longest pause between attempts when accepting keeps failing.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// The connections a node holds now, against its limits. Shared by the accept loop and
/// readiness.
pub struct Capacity {
    /// All connections together.
    total: usize,
    /// From one address.
    per_address: usize,
    /// Addresses that speak for many clients (`--trusted-proxies`).
    trusted_proxies: Vec<ipnet::IpNet>,
    open: AtomicUsize,
    by_address: Mutex<HashMap<IpAddr, usize>>,
    /// When the process last ran out of file descriptors.
    exhausted_at: Mutex<Option<Instant>>,
}

/// Why a node is not ready for more clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    /// It holds as many connections as it may.
    Connections,
    /// The process ran out of file descriptors a moment ago.
    Descriptors,
}

impl Full {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connections => "connections",
            Self::Descriptors => "descriptors",
        }
    }
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// Its address holds as many connections as one may.
    Address,
    /// The node is full.
    Node,
}

impl Capacity {
    pub fn new(limits: &ConnectionLimits, trusted_proxies: Vec<ipnet::IpNet>) -> Arc<Self> {
        Arc::new(Self {
            total: limits.total(),
            per_address: limits.per_address,
            trusted_proxies,
            open: AtomicUsize::new(0),
            by_address: Mutex::default(),
            exhausted_at: Mutex::default(),
        })
    }

    /// The most connections the node holds.
    pub fn total(&self) -> usize {
        self.total
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Whether the node should be sent no more clients, and why: from nine tenths of its
    /// total, so that the balancer hears it while there is still room to ask, and clients
    /// already on their way still get in.
    pub fn full(&self) -> Option<Full> {
        let exhausted = *self.exhausted_at.lock().unwrap_or_else(|p| p.into_inner());
        if exhausted.is_some_and(|at| at.elapsed() < EXHAUSTION_MEMORY) {
            Some(Full::Descriptors)
        } else if self.open() >= self.total - self.total / 10 {
            Some(Full::Connections)
        } else {
            None
        }
    }

    /// A ticket for a connection from `peer`, or why there is none.
    fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<Ticket, Refusal> {
        let key = self.address_key(peer);
        if let Some(key) = key {
            let mut counts = self.by_address.lock().unwrap_or_else(|p| p.into_inner());
            let count = counts.entry(key).or_default();
            if *count >= self.per_address {
                return Err(Refusal::Address);
            }
            *count += 1;
        }
        // Taken after the address's place, and given back with it if the node is full.
        let ticket = Ticket { capacity: self.clone(), key };
        if self.open.fetch_add(1, Ordering::Relaxed) >= self.total {
            return Err(Refusal::Node); // `ticket` gives both places back as it drops
        }
        Ok(ticket)
    }

    /// What `peer` is counted as: its /64 for IPv6, nothing for a trusted proxy.
    fn address_key(&self, peer: IpAddr) -> Option<IpAddr> {
        let peer = peer.to_canonical();
        if is_trusted(&peer, &self.trusted_proxies) {
            return None;
        }
        Some(match peer {
            IpAddr::V4(_) => peer,
            IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !(u128::from(u64::MAX)))),
        })
    }

    /// Notes that the process ran out of descriptors; true if it had not just before.
    fn ran_out(&self) -> bool {
        let mut at = self.exhausted_at.lock().unwrap_or_else(|p| p.into_inner());
        let fresh = at.is_none_or(|at| at.elapsed() >= EXHAUSTION_MEMORY);
        *at = Some(Instant::now());
        fresh
    }
}

/// A connection's places in the counts, given back when it drops.
struct Ticket {
    capacity: Arc<Capacity>,
    key: Option<IpAddr>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.capacity.open.fetch_sub(1, Ordering::Relaxed);
        if let Some(key) = self.key {
            let mut counts = self.capacity.by_address.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(count) = counts.get_mut(&key) {
                *count -= 1;
                if *count == 0 {
                    counts.remove(&key);
                }
            }
        }
    }
}

/// An accepted connection, counted until it closes: after an upgrade to a WebSocket the
/// socket lives on inside it, and so does its place.
pub struct Counted {
    stream: TcpStream,
    _ticket: Ticket,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// The node's listening socket, with its limits.
pub struct Listener {
    tcp: TcpListener,
    capacity: Arc<Capacity>,
    /// Held open so that it can be let go when the process runs out of descriptors.
    spare: Option<std::fs::File>,
}

impl Listener {
    pub fn new(tcp: TcpListener, capacity: Arc<Capacity>) -> Self {
        Self { tcp, capacity, spare: spare_descriptor() }
    }

    /// The next connection within the limits; those beyond are refused on the way.
    pub async fn accept(&mut self) -> (Counted, SocketAddr) {
        let mut backoff = Duration::from_millis(5);
        loop {
            match self.tcp.accept().await {
                Ok((stream, peer)) => {
                    backoff = Duration::from_millis(5);
                    if let Err(error) = stream.set_nodelay(true) {
                        // tungstenite may write a frame's header and payload separately;
                        // with Nagle's algorithm the second waits for a delayed ACK.
                        tracing::debug!(%error, "could not set TCP_NODELAY");
                    }
                    match self.capacity.admit(peer.ip()) {
                        Ok(ticket) => return (Counted { stream, _ticket: ticket }, peer),
                        Err(refusal) => {
                            tracing::debug!(%peer, ?refusal, "connection refused");
                            refuse(&stream, refusal);
                        }
                    }
                }
                Err(error) if out_of_descriptors(&error) => {
                    if self.capacity.ran_out() {
                        tracing::warn!(
                            open = self.capacity.open(),
                            "out of file descriptors: refusing new connections until some close"
                        );
                    }
                    // Let the spare go to take the waiting connection and tell it to come
                    // back later, rather than leave it in the backlog where it hangs.
                    if self.spare.take().is_some() {
                        let waiting =
                            tokio::time::timeout(Duration::from_millis(10), self.tcp.accept());
                        if let Ok(Ok((stream, _))) = waiting.await {
                            refuse(&stream, Refusal::Node);
                        }
                        self.spare = spare_descriptor();
                    }
                    if self.spare.is_none() {
                        // Something else took the descriptor: wait for some to close.
                        back_off(&mut backoff).await;
                    }
                }
                // The client gave up before it was accepted: nothing to do.
                Err(error) if connection_error(&error) => {}
                Err(error) => {
                    tracing::error!(%error, "accepting a connection failed");
                    back_off(&mut backoff).await;
                }
            }
        }
    }
}

/// Waits `backoff`, and doubles it for the next time (up to MAX_BACKOFF).
async fn back_off(backoff: &mut Duration) {
    tokio::time::sleep(*backoff).await;
    *backoff = (*backoff * 2).min(MAX_BACKOFF);
}

fn spare_descriptor() -> Option<std::fs::File> {
    std::fs::File::open("/dev/null").ok()
}

fn out_of_descriptors(error: &io::Error) -> bool {
    // EMFILE (the process's limit) and ENFILE (the system's).
    matches!(error.raw_os_error(), Some(24 | 23))
}

fn connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Says why, without waiting on the client: whatever the socket takes at once, then close.
fn refuse(stream: &TcpStream, refusal: Refusal) {
    let (status, code, message) = match refusal {
        Refusal::Address => (
            "429 Too Many Requests",
            "rate_limited",
            "too many connections from your address; close some and try again",
        ),
        Refusal::Node => {
            ("503 Service Unavailable", "unavailable", "this server is full; try again shortly")
        }
    };
    let body = format!(r#"{{"error":{{"code":"{code}","message":"{message}"}}}}"#);
    let response = format!(
        "HTTP/1.1 {status}\r\nretry-after: {REFUSED_RETRY_SECS}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    // What the client sent already is read first: closing a socket with unread data resets
    // it, and the reset could overtake the answer.
    let mut sink = [0u8; 4096];
    while matches!(stream.try_read(&mut sink), Ok(n) if n > 0) {}
    let _ = stream.try_write(response.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capacity(total: usize, per_address: usize) -> Arc<Capacity> {
        Capacity::new(
            &ConnectionLimits { total: Some(total), per_address },
            vec!["10.0.0.1/32".parse().expect("a network")],
        )
    }

    #[test]
    fn an_address_holds_its_share_and_gets_it_back() {
        let capacity = capacity(100, 2);
        let a: IpAddr = "192.0.2.1".parse().expect("an address");
        let first = capacity.admit(a).expect("one");
        let _second = capacity.admit(a).expect("two");
        assert_eq!(capacity.admit(a).err(), Some(Refusal::Address));
        assert!(capacity.admit("192.0.2.2".parse().expect("another")).is_ok());
        drop(first);
        assert!(capacity.admit(a).is_ok(), "a closed connection frees its place");
    }

    #[test]
    fn ipv6_is_counted_by_its_64_and_mapped_ipv4_as_ipv4() {
        let capacity = capacity(100, 1);
        let _one = capacity.admit("2001:db8:1:2::1".parse().expect("v6")).expect("one");
        let same_64: IpAddr = "2001:db8:1:2:ffff::9".parse().expect("v6");
        assert_eq!(capacity.admit(same_64).err(), Some(Refusal::Address));
        assert!(capacity.admit("2001:db8:1:3::1".parse().expect("v6")).is_ok());
        let _v4 = capacity.admit("192.0.2.7".parse().expect("v4")).expect("v4");
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().expect("mapped");
        assert_eq!(capacity.admit(mapped).err(), Some(Refusal::Address));
    }

    #[test]
    fn a_trusted_proxy_is_held_to_the_total_only_and_a_full_node_refuses_everyone() {
        let capacity = capacity(3, 1);
        let proxy: IpAddr = "10.0.0.1".parse().expect("proxy");
        let held: Vec<Ticket> =
            (0..3).map(|_| capacity.admit(proxy).expect("a proxy's connection")).collect();
        assert_eq!(capacity.full(), Some(Full::Connections));
        assert_eq!(capacity.admit("192.0.2.1".parse().expect("v4")).err(), Some(Refusal::Node));
        assert_eq!(capacity.open(), 3, "a refused connection gives its place back");
        drop(held);
        assert_eq!((capacity.open(), capacity.full()), (0, None));
        assert!(capacity.admit("192.0.2.1".parse().expect("v4")).is_ok());
    }
}
