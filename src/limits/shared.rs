//! The cluster's buckets and socket counts, in Redis: with several nodes behind a load
//! balancer, a person spreading actions or connections over them meets one budget, not one
//! per node.
//!
//! Each check is one Lua script, so that the check and the count are one step for the
//! whole cluster, timed by Redis's clock so that nodes whose clocks differ agree. A bucket
//! is the same single number as in `rate.rs` (its theoretical arrival time, in
//! microseconds of Redis's clock), which expires once the bucket is full again.
//!
//! A user's sockets are a hash with a field per socket, named by its node and a number the
//! node gave it, so that counting one in and out can each be repeated without harm (a
//! reply lost to a timeout leaves no doubt to resolve). Each node keeps a key of its own
//! alive (refreshed every few seconds, removed when it stops); sockets of a node whose key
//! has lapsed, because it died without saying so, are left out and removed by the next
//! check, so a crashed node's sockets are not held against anyone for more than
//! [`NODE_LEASE`]. (The script names the node keys it reads itself, which a single Redis
//! or a replicated one allows; Redis Cluster's sharding does not.)

use std::time::Duration;

use super::link::RedisLink;
use super::{Action, Rate, Subject};
use crate::domain::UserId;

/// How long a node's share of the socket counts outlives its last sign of life.
pub const NODE_LEASE: Duration = Duration::from_secs(30);

/// Takes ARGV[3] tokens, at one per ARGV[1] microseconds with a burst of ARGV[2], from the
/// bucket KEYS[1]. Returns the wait in microseconds (0: taken).
const TAKE: &str = r"
local now = redis.call('TIME')
local now_us = tonumber(now[1]) * 1000000 + tonumber(now[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = math.min(tonumber(ARGV[3]), burst)
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now_us then tat = now_us end
local new_tat = tat + interval * cost
local horizon = now_us + interval * burst
if new_tat > horizon then return math.ceil(new_tat - horizon) end
redis.call('SET', KEYS[1], string.format('%.3f', new_tat), 'PX', math.ceil((new_tat - now_us) / 1000) + 1)
return 0
";

/// Counts the socket ARGV[1] (`node:number`) of the user whose sockets are KEYS[1] on
/// node ARGV[4], unless the live nodes' sockets number ARGV[2] already. Node keys are
/// ARGV[3] .. node. Returns 1 if counted (or counted already).
const OPEN_SOCKET: &str = r"
local total = 0
local alive = {}
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
  local node = string.match(field, '^([^:]+):')
  if node ~= nil and alive[node] == nil then
    alive[node] = node == ARGV[4] or redis.call('EXISTS', ARGV[3] .. node) == 1
  end
  if node ~= nil and alive[node] then
    if field == ARGV[1] then return 1 end
    total = total + 1
  else
    redis.call('HDEL', KEYS[1], field)
  end
end
if total >= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], 1)
redis.call('PEXPIRE', KEYS[1], 86400000)
return 1
";

pub struct SharedLimits {
    redis: RedisLink,
    /// This node's name in the socket counts.
    node: String,
    take: redis::Script,
    open_socket: redis::Script,
}

impl SharedLimits {
    pub fn new(redis: RedisLink, node: String) -> Self {
        Self {
            redis,
            node,
            take: redis::Script::new(TAKE),
            open_socket: redis::Script::new(OPEN_SOCKET),
        }
    }

    /// As [`super::rate::Buckets::take`], for the whole cluster: `Ok(Err(wait))` when
    /// refused, `Err` when Redis cannot say.
    pub async fn take(
        &self,
        action: Action,
        subject: Subject,
        rate: Rate,
        cost: u64,
    ) -> Result<Result<(), Duration>, redis::RedisError> {
        // In microseconds with a fraction: a byte's share of a large budget is far less
        // than one.
        let interval_us = format!("{:.6}", rate.interval_nanos() as f64 / 1000.0);
        let mut invocation = self.take.key(format!("confab:limit:{}:{subject}", action.name()));
        invocation.arg(interval_us).arg(rate.burst).arg(cost);
        let wait: u64 = self.redis.invoke(&invocation).await?;
        Ok(if wait == 0 { Ok(()) } else { Err(Duration::from_micros(wait)) })
    }

    /// Counts this node's socket `number` of `user` unless the cluster holds `cap` of
    /// theirs already.
    pub async fn open_socket(
        &self,
        user: UserId,
        number: u64,
        cap: usize,
    ) -> Result<bool, redis::RedisError> {
        let mut invocation = self.open_socket.key(sockets_key(user));
        invocation.arg(self.socket_field(number)).arg(cap).arg(NODE_KEY_PREFIX).arg(&self.node);
        let counted: u8 = self.redis.invoke(&invocation).await?;
        Ok(counted == 1)
    }

    /// Takes back this node's socket `number` of `user`; taking back one that was not
    /// counted changes nothing.
    pub async fn close_socket(&self, user: UserId, number: u64) -> Result<(), redis::RedisError> {
        let mut pipeline = redis::pipe();
        pipeline.hdel(sockets_key(user), self.socket_field(number)).ignore();
        self.redis.run(&pipeline).await
    }

    fn socket_field(&self, number: u64) -> String {
        format!("{}:{number}", self.node)
    }

    /// Keeps this node's share of the socket counts alive for another [`NODE_LEASE`].
    pub async fn renew_lease(&self) -> Result<(), redis::RedisError> {
        let mut pipeline = redis::pipe();
        pipeline.set_options(
            self.node_key(),
            1,
            redis::SetOptions::default()
                .with_expiration(redis::SetExpiry::PX(NODE_LEASE.as_millis() as u64)),
        );
        self.redis.run(&pipeline).await
    }

    /// This node stops: its share of the counts no longer holds.
    pub async fn end_lease(&self) -> Result<(), redis::RedisError> {
        let mut pipeline = redis::pipe();
        pipeline.del(self.node_key());
        self.redis.run(&pipeline).await
    }

    fn node_key(&self) -> String {
        format!("{NODE_KEY_PREFIX}{}", self.node)
    }
}

const NODE_KEY_PREFIX: &str = "confab:limits:node:";

fn sockets_key(user: UserId) -> String {
    format!("confab:limits:sockets:{user}")
}
