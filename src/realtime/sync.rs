//! Answering a `sync`: the events a client missed, read from the store a page at a time.
//!
//! A client back from a long absence may have missed thousands of events. They are never
//! loaded at once: the stream reads one page, the connection writes it, and only then is
//! the next page read, so memory stays bounded by one page however much was missed.

use futures_util::stream::{self, BoxStream, StreamExt};

use super::connection::message_frame;
use crate::domain::RoomId;
use crate::store::{Page, Store, StoreError};
use axum::extract::ws::Utf8Bytes;
use std::sync::Arc;

/// Events read per page.
const PAGE: u32 = 200;

/// Everything in one room after `after`, up to and including `up_to`.
#[derive(Debug, Clone, Copy)]
pub struct SyncRange {
    pub room_id: RoomId,
    pub after: i64,
    pub up_to: i64,
}

/// What the connection receives from a sync in progress.
pub enum SyncItem {
    /// The next events, in order.
    Frames(Vec<Utf8Bytes>),
    /// The store failed; the sync ends without `sync.done`.
    Failed(StoreError),
    /// All ranges are sent; `sync.done` with the request's id is due.
    Done(Option<String>),
}

/// The pages of a sync, room after room, each in seq order, then `Done`.
pub fn sync_stream(
    store: Arc<dyn Store>,
    ranges: Vec<SyncRange>,
    id: Option<String>,
) -> BoxStream<'static, SyncItem> {
    struct State {
        store: Arc<dyn Store>,
        ranges: std::vec::IntoIter<SyncRange>,
        current: Option<SyncRange>,
        id: Option<Option<String>>,
    }
    let mut ranges = ranges.into_iter();
    let current = ranges.next();
    let state = State { store, ranges, current, id: Some(id) };
    stream::unfold(state, |mut state| async move {
        loop {
            let Some(range) = state.current else {
                // `id` is taken once: after `Done` the stream ends.
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
                        let frames = page.messages.iter().map(message_frame).collect();
                        return Some((SyncItem::Frames(frames), state));
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
