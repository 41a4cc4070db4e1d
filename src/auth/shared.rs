//! The login throttle's counts shared by every node, in Redis: with several nodes behind a
//! load balancer, an attacker spreading guesses over them meets one budget per username
//! and per address, not one per node.
//!
//! The same rule as [`super::LoginThrottle`] (per username at an address, per address and
//! per username: a few free failures, then a wait that doubles with each further one,
//! forgotten after a quiet hour), applied by one Lua script per
//! attempt, so that the check and the count are one step for the whole cluster, and timed
//! by Redis's clock, so that nodes whose clocks differ agree. Each node keeps its own
//! throttle too: while Redis cannot be reached, a node still throttles what it sees.

use std::time::Duration;

use super::throttle::Policies;
use crate::limits::RedisLink;

/// Checks every key; if none must wait, counts the attempt against each. Returns the wait
/// in milliseconds (0: go ahead). KEYS: the username at the address's, the username's (both
/// empty strings for a name that cannot exist) and the address's. ARGV: each policy's free
/// failures, first delay, longest delay and forgetting time (ms), in the keys' order.
const BEGIN: &str = r"
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local function wait(key, free, first, longest)
  if key == '' then return 0 end
  local failures = tonumber(redis.call('HGET', key, 'f') or '0')
  local last = tonumber(redis.call('HGET', key, 't') or '0')
  local excess = failures - free
  if excess <= 0 then return 0 end
  local delay = math.min(first * 2 ^ math.min(excess - 1, 20), longest)
  return math.max(0, last + delay - now_ms)
end
local w = 0
for i, key in ipairs(KEYS) do
  local at = (i - 1) * 4
  w = math.max(w, wait(key, tonumber(ARGV[at + 1]), tonumber(ARGV[at + 2]), tonumber(ARGV[at + 3])))
end
if w > 0 then return w end
for i, key in ipairs(KEYS) do
  if key ~= '' then
    redis.call('HINCRBY', key, 'f', 1)
    redis.call('HSET', key, 't', now_ms)
    redis.call('PEXPIRE', key, ARGV[(i - 1) * 4 + 4])
  end
end
return 0
";

/// The attempt succeeded: the username at the address starts afresh, the username's and
/// the address's counts are taken back. KEYS as for BEGIN.
const SUCCEEDED: &str = r"
redis.call('DEL', KEYS[1])
for i = 2, 3 do
  if redis.call('HGET', KEYS[i], 'f') then
    if tonumber(redis.call('HINCRBY', KEYS[i], 'f', -1)) < 0 then redis.call('HSET', KEYS[i], 'f', 0) end
  end
end
return 0
";

pub struct SharedThrottle {
    redis: RedisLink,
    policies: Policies,
    begin: redis::Script,
    succeeded: redis::Script,
}

impl SharedThrottle {
    pub fn new(client: redis::Client, policies: Policies) -> Self {
        Self {
            redis: RedisLink::new(client),
            policies,
            begin: redis::Script::new(BEGIN),
            succeeded: redis::Script::new(SUCCEEDED),
        }
    }

    /// As [`super::LoginThrottle::begin`], for the whole cluster: `Ok(Err(wait))` if a key
    /// must still wait. `Err` when Redis cannot say.
    pub async fn begin(
        &self,
        username: Option<&str>,
        address: &str,
    ) -> Result<Result<(), Duration>, redis::RedisError> {
        let pair = username.map(|username| pair_key(username, address)).unwrap_or_default();
        let user = username.map(user_key).unwrap_or_default();
        self.run_begin([pair, user, address_key(address)]).await
    }

    /// As [`super::LoginThrottle::begin_device`], for the whole cluster.
    pub async fn begin_device(
        &self,
        device: &str,
    ) -> Result<Result<(), Duration>, redis::RedisError> {
        // Only the device's own count, kept with the pair's policy.
        self.run_begin([device_key(device), String::new(), String::new()]).await
    }

    /// Runs BEGIN on the pair's, the username's and the address's keys (empty: none).
    async fn run_begin(
        &self,
        keys: [String; 3],
    ) -> Result<Result<(), Duration>, redis::RedisError> {
        let [first, second, third] = keys;
        let mut invocation = self.begin.key(first);
        invocation.key(second).key(third);
        let Policies { pair, username, address } = self.policies;
        for policy in [pair, username, address] {
            invocation
                .arg(policy.free_failures)
                .arg(policy.first_delay.as_millis() as u64)
                .arg(policy.max_delay.as_millis() as u64)
                .arg(policy.forget_after.as_millis() as u64);
        }
        let wait: u64 = self.redis.invoke(&invocation).await?;
        Ok(if wait == 0 { Ok(()) } else { Err(Duration::from_millis(wait)) })
    }

    /// As [`super::LoginThrottle::device_succeeded`], for the whole cluster.
    pub async fn device_succeeded(&self, device: &str) -> Result<(), redis::RedisError> {
        let mut invocation = self.succeeded.key(device_key(device));
        invocation.key("").key("");
        self.redis.invoke(&invocation).await
    }

    /// As [`super::LoginThrottle::succeeded`], for the whole cluster.
    pub async fn succeeded(&self, username: &str, address: &str) -> Result<(), redis::RedisError> {
        let mut invocation = self.succeeded.key(pair_key(username, address));
        invocation.key(user_key(username));
        invocation.key(address_key(address));
        self.redis.invoke(&invocation).await
    }
}

fn pair_key(username: &str, address: &str) -> String {
    format!("confab:login:pair:{}", super::throttle::pair_key(username, address))
}

fn device_key(device: &str) -> String {
    format!("confab:login:{}", super::throttle::device_key(device))
}

fn user_key(username: &str) -> String {
    format!("confab:login:user:{username}")
}

fn address_key(address: &str) -> String {
    format!("confab:login:address:{address}")
}
