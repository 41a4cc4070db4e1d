//! Answering `sync`: the events a client missed, read from the store a page at a time.
//!
//! A client back from a long absence may have missed thousands of events. They are never
//! loaded at once: the connection asks for the next page only after writing the previous
//! one, so memory stays bounded by one page however much was missed. One sync is answered
//! at a time; a few more may wait behind it.
//!
//! Catching up sends state, not history: each message that changed, once, as it is now
//! (see `protocol::catch_up_frame`), then the room's receipts. A client that applies them
//! ends up where one that never disconnected is.

use std::collections::VecDeque;
use std::sync::Arc;

use axum::extract::ws::Utf8Bytes;
use futures_util::stream::{self, BoxStream, StreamExt};

use super::protocol::{ServerFrame, catch_up_frame};
use crate::domain::RoomId;
use crate::store::{ChangeSpan, Store, StoreError};

/// Changes read per page.
const PAGE: u32 = 200;
/// `sync` requests that may wait behind the one being answered.
const MAX_QUEUED: usize = 4;

/// One room of a sync: the client has everything up to `since`; the live stream starts
/// after `up_to`.
#[derive(Debug, Clone, Copy)]
pub struct SyncRange {
    pub room_id: RoomId,
    pub since: i64,
    pub up_to: i64,
}

/// One `sync` request, planned: the ranges to send, then `sync.done` with `id`.
pub struct SyncRequest {
    pub id: Option<String>,
    /// The frame's `client_id`, for an error about it.
    pub client_id: Option<String>,
    pub ranges: Vec<SyncRange>,
}

/// What the connection receives from the sync being answered.
pub enum SyncItem {
    /// The next events of a room, in order.
    Frames(RoomId, Vec<Utf8Bytes>),
    /// The store failed; this sync ends without `sync.done`. Holds the request's
    /// `client_id`.
    Failed(StoreError, Option<String>),
    /// All ranges are sent; `sync.done` with the request's id is due.
    Done(Option<String>),
}

/// The sync being answered and those waiting.
pub struct Syncs {
    store: Arc<dyn Store>,
    current: Option<BoxStream<'static, SyncItem>>,
    queued: VecDeque<SyncRequest>,
}

/// Too many syncs are waiting; the request is handed back.
pub struct TooManySyncs(pub SyncRequest);

impl Syncs {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store, current: None, queued: VecDeque::new() }
    }

    /// Queues a sync, and starts it if none is being answered.
    pub fn request(&mut self, request: SyncRequest) -> Result<(), TooManySyncs> {
        if self.queued.len() >= MAX_QUEUED {
            return Err(TooManySyncs(request));
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
                Some(item @ (SyncItem::Done(_) | SyncItem::Failed(..))) => {
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

/// The pages of one sync, room after room: each room's changes in order, then its
/// receipts; after the last room, `Done`.
fn pages(store: Arc<dyn Store>, request: SyncRequest) -> BoxStream<'static, SyncItem> {
    struct State {
        store: Arc<dyn Store>,
        ranges: std::vec::IntoIter<SyncRange>,
        /// The room being sent, and the latest change sent of it.
        current: Option<(SyncRange, i64)>,
        /// Taken when `Done` or `Failed` is sent; the stream then ends.
        id: Option<Option<String>>,
        client_id: Option<String>,
    }
    impl State {
        /// Ends the sync on a store failure: no more pages, no `Done`.
        fn fail(&mut self, error: StoreError) -> SyncItem {
            self.current = None;
            self.id = None;
            SyncItem::Failed(error, self.client_id.take())
        }
    }
    let mut ranges = request.ranges.into_iter();
    let current = ranges.next().map(|range| (range, range.since));
    let state =
        State { store, ranges, current, id: Some(request.id), client_id: request.client_id };
    stream::unfold(state, |mut state| async move {
        let Some((range, after)) = state.current else {
            return state.id.take().map(|id| (SyncItem::Done(id), state));
        };
        let span = ChangeSpan { since: range.since, up_to: range.up_to, after, limit: PAGE };
        let page = if range.since < range.up_to {
            state.store.changes(range.room_id, span).await
        } else {
            Ok(Vec::new())
        };
        let item = match page {
            Ok(changes) if !changes.is_empty() => {
                let last = changes.last().map_or(after, |c| c.changed_seq);
                state.current = Some((range, last));
                let frames = changes.iter().map(|c| catch_up_frame(range.since, range.up_to, c));
                SyncItem::Frames(range.room_id, frames.collect())
            }
            // The room's changes are all sent: its receipts close it.
            Ok(_) => match state.store.receipts(range.room_id).await {
                Ok(receipts) => {
                    state.current = state.ranges.next().map(|next| (next, next.since));
                    let frame =
                        ServerFrame::Receipts { room_id: range.room_id, receipts: &receipts };
                    SyncItem::Frames(range.room_id, vec![frame.to_text()])
                }
                Err(error) => state.fail(error),
            },
            Err(error) => state.fail(error),
        };
        Some((item, state))
    })
    .boxed()
}
