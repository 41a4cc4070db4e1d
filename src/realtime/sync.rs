//! Answering `sync`: the events a client missed, read from the store a page at a time.
//!
//! A client back from a long absence may have missed thousands of events. They are never
//! loaded at once: the connection asks for the next page only after writing the previous
//! one, so memory stays bounded by one page however much was missed. One sync is answered
//! at a time; a few more may wait behind it.

use std::collections::VecDeque;
use std::sync::Arc;

use axum::extract::ws::Utf8Bytes;
use futures_util::stream::{self, BoxStream, StreamExt};

use super::protocol::message_created_frame;
use crate::domain::RoomId;
use crate::store::{Page, Store, StoreError};

/// Events read per page.
const PAGE: u32 = 200;
/// `sync` requests that may wait behind the one being answered.
const MAX_QUEUED: usize = 4;

/// Everything in one room after `after`, up to and including `up_to`.
#[derive(Debug, Clone, Copy)]
pub struct SyncRange {
    pub room_id: RoomId,
    pub after: i64,
    pub up_to: i64,
}

/// One `sync` request, planned: the ranges to send, then `sync.done` with `id`.
pub struct SyncRequest {
    pub id: Option<String>,
    pub ranges: Vec<SyncRange>,
}

/// What the connection receives from the sync being answered.
pub enum SyncItem {
    /// The next events of a room, in order.
    Frames(RoomId, Vec<Utf8Bytes>),
    /// The store failed; this sync ends without `sync.done`.
    Failed(StoreError),
    /// All ranges are sent; `sync.done` with the request's id is due.
    Done(Option<String>),
}

/// The sync being answered and those waiting.
pub struct Syncs {
    store: Arc<dyn Store>,
    current: Option<BoxStream<'static, SyncItem>>,
    queued: VecDeque<SyncRequest>,
}

/// Too many syncs are waiting.
pub struct TooManySyncs;

impl Syncs {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store, current: None, queued: VecDeque::new() }
    }

    /// Queues a sync, and starts it if none is being answered.
    pub fn request(&mut self, request: SyncRequest) -> Result<(), TooManySyncs> {
        if self.queued.len() >= MAX_QUEUED {
            return Err(TooManySyncs);
        }
        self.queued.push_back(request);
        if self.current.is_none() {
            self.start_next();
        }
        Ok(())
    }

    /// The next item of the sync being answered; never resolves while there is none. After
    /// `Done` or `Failed`, the next waiting sync starts.
    pub async fn next(&mut self) -> SyncItem {
        loop {
            let Some(current) = &mut self.current else {
                return std::future::pending().await;
            };
            match current.next().await {
                Some(item @ (SyncItem::Done(_) | SyncItem::Failed(_))) => {
                    self.start_next();
                    return item;
                }
                Some(item) => return item,
                // Streams end only after `Done` or `Failed`, which replaced them already.
                None => self.start_next(),
            }
        }
    }

    fn start_next(&mut self) {
        self.current = self.queued.pop_front().map(|request| pages(self.store.clone(), request));
    }
}

/// The pages of one sync, room after room, each in seq order, then `Done`.
fn pages(store: Arc<dyn Store>, request: SyncRequest) -> BoxStream<'static, SyncItem> {
    struct State {
        store: Arc<dyn Store>,
        ranges: std::vec::IntoIter<SyncRange>,
        current: Option<SyncRange>,
        /// Taken when `Done` or `Failed` is sent; the stream then ends.
        id: Option<Option<String>>,
    }
    let mut ranges = request.ranges.into_iter();
    let current = ranges.next();
    let state = State { store, ranges, current, id: Some(request.id) };
    stream::unfold(state, |mut state| async move {
        loop {
            let Some(range) = state.current else {
                return state.id.take().map(|id| (SyncItem::Done(id), state));
            };
            if range.after >= range.up_to {
                state.current = state.ranges.next();
                continue;
            }
            let page =
                Page { after: Some(range.after), before: Some(range.up_to + 1), limit: PAGE };
            match state.store.messages(range.room_id, page).await {
                Ok(page) => match page.messages.last() {
                    Some(last) => {
                        state.current = Some(SyncRange { after: last.seq, ..range });
                        let frames = page.messages.iter().map(message_created_frame).collect();
                        return Some((SyncItem::Frames(range.room_id, frames), state));
                    }
                    None => state.current = state.ranges.next(),
                },
                Err(error) => {
                    state.current = None;
                    state.id = None;
                    return Some((SyncItem::Failed(error), state));
                }
            }
        }
    })
    .boxed()
}
