//! One node's connection to the Redis that keeps the cluster's counts (the login
//! throttle's, the rates', the sockets'): made when first needed, dropped after an error,
//! and not tried again for a few seconds after one, so that while Redis is away requests
//! rely at once on the node's own counts instead of each waiting for it.

use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use tokio::sync::Mutex;

/// How long a call waits for Redis before the node relies on its own counts.
pub const PATIENCE: Duration = Duration::from_secs(1);
/// After Redis failed, how long the node relies on its own counts without trying it.
const COOL_DOWN: Duration = Duration::from_secs(5);

#[derive(Default)]
struct State {
    connection: Option<MultiplexedConnection>,
    failed_at: Option<Instant>,
}

pub struct RedisLink {
    client: redis::Client,
    state: Mutex<State>,
}

impl RedisLink {
    pub fn new(client: redis::Client) -> Self {
        Self { client, state: Mutex::new(State::default()) }
    }

    /// Runs `script` within [`PATIENCE`]; an error (or no answer in time) drops the
    /// connection.
    pub async fn invoke<T: redis::FromRedisValue>(
        &self,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> Result<T, redis::RedisError> {
        let mut connection = self.connection().await?;
        let done = tokio::time::timeout(PATIENCE, invocation.invoke_async::<T>(&mut connection))
            .await
            .unwrap_or_else(|_| Err(timed_out()));
        self.forget_on_error(done).await
    }

    /// Runs `pipeline` within [`PATIENCE`], as [`RedisLink::invoke`].
    pub async fn run<T: redis::FromRedisValue>(
        &self,
        pipeline: &redis::Pipeline,
    ) -> Result<T, redis::RedisError> {
        let mut connection = self.connection().await?;
        let done = tokio::time::timeout(PATIENCE, pipeline.query_async::<T>(&mut connection))
            .await
            .unwrap_or_else(|_| Err(timed_out()));
        self.forget_on_error(done).await
    }

    /// The connection, made if there is none, unless Redis failed moments ago.
    async fn connection(&self) -> Result<MultiplexedConnection, redis::RedisError> {
        {
            let state = self.state.lock().await;
            if let Some(connection) = &state.connection {
                return Ok(connection.clone());
            }
            if state.failed_at.is_some_and(|at| at.elapsed() < COOL_DOWN) {
                return Err(timed_out());
            }
        }
        // Made without holding the lock: calls arriving meanwhile make their own rather
        // than queue behind this one.
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(PATIENCE))
            .set_response_timeout(Some(PATIENCE));
        let made = self.client.get_multiplexed_async_connection_with_config(&config).await;
        let mut state = self.state.lock().await;
        match made {
            Ok(connection) => {
                state.failed_at = None;
                Ok(state.connection.get_or_insert(connection).clone())
            }
            Err(error) => {
                state.failed_at = Some(Instant::now());
                Err(error)
            }
        }
    }

    async fn forget_on_error<T>(
        &self,
        result: Result<T, redis::RedisError>,
    ) -> Result<T, redis::RedisError> {
        if result.is_err() {
            let mut state = self.state.lock().await;
            state.connection = None;
            state.failed_at = Some(Instant::now());
        }
        result
    }
}

fn timed_out() -> redis::RedisError {
    redis::RedisError::from(std::io::Error::new(std::io::ErrorKind::TimedOut, "redis timed out"))
}
