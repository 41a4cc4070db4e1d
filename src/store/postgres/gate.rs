//! Turns: this process's writes to one room (or one user's profile) take turns, from before
//! their transaction takes its locks until after their changes are announced.
//!
//! PostgreSQL already orders a room's transactions: each locks the room's row first, so
//! they commit one after another. What it cannot order is what happens after each commit:
//! two tasks that committed one after the other may announce in either order. Holding the
//! room's turn from before the lock until after the announcement makes this process
//! announce a room's changes in commit order. It costs no concurrency that the row lock had
//! not taken already, and writes waiting for their turn hold no database connection.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use tokio::sync::OwnedMutexGuard;

use crate::domain::{RoomId, UserId};

/// Whose turn a write must wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Gate {
    /// Changes to a room: its messages, reactions and members.
    Room(RoomId),
    /// Changes to a user's profile.
    User(UserId),
    /// Nothing that others must see in order (a session, an upload).
    Free,
}

/// One lock per key, made when first wanted and forgotten when nobody holds or waits for it.
#[derive(Default)]
pub(super) struct Turns {
    locks: Mutex<HashMap<Gate, Arc<tokio::sync::Mutex<()>>>>,
}

/// A turn taken; the next writer of the same key goes when it is dropped.
pub(super) struct Turn {
    turns: Arc<Turns>,
    gate: Gate,
    lock: Arc<tokio::sync::Mutex<()>>,
    held: Option<OwnedMutexGuard<()>>,
}

impl Turns {
    /// Waits for `gate`'s turn (at once for [`Gate::Free`]). Turns are given in the order
    /// they were first asked for: a caller that asks before another goes before it.
    pub async fn take(self: &Arc<Self>, gate: Gate) -> Option<Turn> {
        if gate == Gate::Free {
            return None;
        }
        let lock = self.map().entry(gate).or_default().clone();
        let held = lock.clone().lock_owned().await;
        Some(Turn { turns: self.clone(), gate, lock, held: Some(held) })
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<Gate, Arc<tokio::sync::Mutex<()>>>> {
        // The map is only read and written by the few lines here, which cannot panic.
        self.locks.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// How many keys have a lock now: those held or waited for.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.map().len()
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        drop(self.held.take());
        let mut map = self.turns.map();
        // Every holder and waiter has a clone of the Arc, made under the map's lock. Only the
        // map's and this one are left: nobody else has it or can get it without the map.
        if Arc::strong_count(&self.lock) == 2 {
            map.remove(&self.gate);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_key_is_taken_by_one_writer_at_a_time_and_forgotten_after() {
        let turns = Arc::new(Turns::default());
        let room = Gate::Room(RoomId::from_i64(1));
        let first = turns.take(room).await;
        let waiting = {
            let turns = turns.clone();
            tokio::spawn(async move {
                let _turn = turns.take(room).await;
            })
        };
        // Another key is not held up.
        assert!(turns.take(Gate::Room(RoomId::from_i64(2))).await.is_some());
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "the second writer waits for the first");
        drop(first);
        tokio::time::timeout(Duration::from_secs(10), waiting)
            .await
            .expect("the second writer goes once the first is done")
            .expect("no panic");
        assert_eq!(turns.len(), 0, "nobody holds or waits: nothing is kept");
        assert!(turns.take(Gate::Free).await.is_none());
    }
}
