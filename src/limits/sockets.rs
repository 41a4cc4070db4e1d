//! The cap on one user's WebSocket connections: counted on this node, and over the
//! cluster in Redis when there is one. A connection holds a [`SocketSlot`] for its life;
//! dropping it gives the place back, here at once and in Redis soon after.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::shared::SharedLimits;
use crate::domain::UserId;
use crate::error::Error;

/// How soon a refused connection may try again: a place frees when another of the user's
/// connections closes, which the client cannot know of.
const RETRY_AFTER: Duration = Duration::from_secs(10);

pub struct Sockets {
    cap: Option<usize>,
    /// This node's connections per user; a user with none has no entry.
    local: Arc<Mutex<HashMap<UserId, usize>>>,
    shared: Option<Arc<SharedLimits>>,
    /// Numbers this node's sockets in the cluster's counts.
    numbers: AtomicU64,
    /// Sockets closed that Redis could not be told of yet; retried by `tend`.
    unreleased: Arc<Mutex<Vec<(UserId, u64)>>>,
}

impl Sockets {
    pub fn new(cap: Option<usize>, shared: Option<Arc<SharedLimits>>) -> Self {
        Self {
            cap,
            local: Arc::default(),
            shared: shared.filter(|_| cap.is_some()),
            numbers: AtomicU64::new(0),
            unreleased: Arc::default(),
        }
    }

    pub async fn open(&self, user: UserId) -> Result<SocketSlot, Error> {
        let Some(cap) = self.cap else {
            return Ok(SocketSlot::untracked());
        };
        {
            let mut local = lock(&self.local);
            let count = local.entry(user).or_default();
            if *count >= cap {
                return Err(too_many());
            }
            *count += 1;
        }
        let number = self.numbers.fetch_add(1, Ordering::Relaxed);
        let mut slot = SocketSlot {
            user: Some(user),
            number,
            local: Some(self.local.clone()),
            shared: None,
            unreleased: self.unreleased.clone(),
        };
        if let Some(shared) = &self.shared {
            match shared.open_socket(user, number, cap).await {
                Ok(true) => slot.shared = Some(shared.clone()),
                // Dropping the slot gives back the local count.
                Ok(false) => return Err(too_many()),
                Err(error) => {
                    tracing::debug!(%error, "the cluster's socket counts are unreachable");
                    // It may have been counted all the same (a reply that came too late):
                    // take it back when it closes, which is harmless if it was not.
                    slot.shared = Some(shared.clone());
                }
            }
        }
        Ok(slot)
    }

    /// Keeps this node's counts alive in Redis, and gives back what could not be given
    /// back when its slot was dropped.
    pub async fn tend(&self) {
        let Some(shared) = &self.shared else { return };
        if let Err(error) = shared.renew_lease().await {
            tracing::debug!(%error, "the cluster's socket counts are unreachable");
            return;
        }
        let pending = std::mem::take(&mut *lock(&self.unreleased));
        for (at, (user, number)) in pending.iter().enumerate() {
            if shared.close_socket(*user, *number).await.is_err() {
                lock(&self.unreleased).extend_from_slice(&pending[at..]);
                return;
            }
        }
    }

    pub async fn leave(&self) {
        if let Some(shared) = &self.shared
            && let Err(error) = shared.end_lease().await
        {
            tracing::debug!(%error, "the cluster's socket counts are unreachable");
        }
    }
}

fn too_many() -> Error {
    metrics::counter!(crate::metrics::THROTTLED, "action" => "socket").increment(1);
    Error::RateLimited {
        retry_after: RETRY_AFTER,
        what: "You have as many connections open as you may; close one first",
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Counts changed by single map operations: a poisoned lock still guards usable counts.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One counted connection; its place is given back when dropped.
pub struct SocketSlot {
    user: Option<UserId>,
    /// Its number in this node's share of the cluster's counts.
    number: u64,
    local: Option<Arc<Mutex<HashMap<UserId, usize>>>>,
    /// Set when the cluster counted it too.
    shared: Option<Arc<SharedLimits>>,
    unreleased: Arc<Mutex<Vec<(UserId, u64)>>>,
}

impl SocketSlot {
    fn untracked() -> Self {
        Self { user: None, number: 0, local: None, shared: None, unreleased: Arc::default() }
    }
}

impl Drop for SocketSlot {
    fn drop(&mut self) {
        let Some(user) = self.user else { return };
        if let Some(local) = &self.local {
            let mut local = lock(local);
            if let Some(count) = local.get_mut(&user) {
                *count -= 1;
                if *count == 0 {
                    local.remove(&user);
                }
            }
        }
        if let Some(shared) = self.shared.take() {
            let (unreleased, number) = (self.unreleased.clone(), self.number);
            // Dropped outside a runtime only when the server is gone, and its lease with it.
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    if shared.close_socket(user, number).await.is_err() {
                        lock(&unreleased).push((user, number));
                    }
                });
            }
        }
    }
}
