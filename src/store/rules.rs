//! The rules a write applies inside its transaction, written once for both backends: each
//! backend reads what a rule needs under its own locks, asks the rule, and writes what it
//! says. Pure functions and, for the rules a statement must apply itself (blocks), SQL
//! conditions both databases take as written; no IO.

use std::collections::HashMap;

use crate::domain::{Mention, Message, ReplyPreview, RoomKind, RoomRole, UserId};

use super::rows::REPLY_PREVIEW_CHARS;

/// The most different emoji one message may collect.
pub const MAX_REACTIONS_PER_MESSAGE: i64 = 20;

/// A condition on a membership row `m` (both databases take the same SQL): true unless it
/// is a DM whose member blocks the other member. A blocked person's DM leaves the blocker's
/// view (room list, `ready`, subscriptions, access) while the rows stay, so that unblocking
/// brings it back whole; the other member still sees it. Every read of someone's own
/// memberships puts this beside its join.
pub(super) const SHOWN_TO_MEMBER: &str = "NOT EXISTS (
    SELECT 1 FROM dm_pairs hd
    JOIN blocks hb ON hb.blocked IN (hd.user_low, hd.user_high)
    WHERE hd.room_id = m.room_id AND hb.blocker = m.user_id)";

/// A condition on a membership row `m` (both databases take the same SQL): true unless its
/// room is a DM one of whose two members blocks the other. Nobody sends in such a DM: the
/// blocked one is refused (`Blocked`) and the blocker no longer sees it (`NotMember`). It
/// sits in the insert of a message itself, where membership is checked, so a block that
/// committed before the insert began is always seen.
pub(super) const DM_UNBLOCKED: &str = "NOT EXISTS (
    SELECT 1 FROM dm_pairs bd
    JOIN blocks bb ON bb.blocker IN (bd.user_low, bd.user_high)
                  AND bb.blocked IN (bd.user_low, bd.user_high)
    WHERE bd.room_id = m.room_id)";

/// A member's read and delivered markers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Markers {
    pub read: i64,
    pub delivered: i64,
}

impl Markers {
    /// Where the markers go when a member says they have read up to `read` and received up
    /// to `delivered`: never back, never past the room's newest event (`last_seq`), and
    /// what is read was delivered. Delivery is tracked in DMs only: in a large room every
    /// member confirming every message would cost far more than "delivered" is worth
    /// there, so elsewhere it follows the read marker.
    pub fn advance(
        self,
        kind: RoomKind,
        last_seq: i64,
        read: Option<i64>,
        delivered: Option<i64>,
    ) -> Markers {
        let delivered = if kind == RoomKind::Dm { delivered } else { None };
        let read = read.map_or(self.read, |seq| seq.min(last_seq).max(self.read));
        let delivered =
            delivered.map_or(self.delivered, |seq| seq.min(last_seq)).max(self.delivered).max(read);
        Markers { read, delivered }
    }
}

/// Whether `actor` (with `role` in a room of `kind`) may delete a message by `author`: their
/// own, or anyone's in a room they own, DMs aside (a DM has no owner, whoever opened it).
pub(super) fn may_delete(actor: UserId, role: RoomRole, kind: RoomKind, author: UserId) -> bool {
    actor == author || (role == RoomRole::Owner && kind != RoomKind::Dm)
}

/// Whether a message that has `distinct` different emoji may take a reaction with an emoji
/// it has (`known`) or not.
pub(super) fn may_react(known: bool, distinct: i64) -> bool {
    known || distinct < MAX_REACTIONS_PER_MESSAGE
}

/// What a reply shows of the message it answers (which is not deleted).
pub(super) fn reply_preview(original: &Message) -> ReplyPreview {
    ReplyPreview {
        message_id: original.id,
        author_id: original.author_id,
        preview: original.body.as_str().chars().take(REPLY_PREVIEW_CHARS).collect(),
        deleted: false,
    }
}

/// The bounds of the keys that start with `prefix` (lower-cased): `key >= low AND key <
/// high`, which an index can answer, unlike LIKE. The high bound appends the last code
/// point, a noncharacter that no name contains. Both databases compare the keys code point
/// by code point (SQLite's BINARY, PostgreSQL's "C" collation).
pub(super) fn prefix_range(prefix: &str) -> (String, String) {
    let low = prefix.to_lowercase();
    let high = format!("{low}\u{10FFFF}");
    (low, high)
}

/// The usernames a body's mentions may mean, to look up among the room's members.
pub(super) fn mention_candidates(mentions: &[Mention]) -> Vec<String> {
    mentions.iter().flat_map(|mention| mention.candidates().iter().cloned()).collect()
}

/// The members a body's mentions name, given the room's members among the candidates
/// (`named`: username to id), in the order first named, each once, the author aside. A
/// name is resolved among all members, the author included, and only then is the author
/// left out: "@al" meant for the author must not fall through to someone else.
pub(super) fn mentioned_members(
    mentions: &[Mention],
    named: &HashMap<String, i64>,
    author: UserId,
) -> Vec<UserId> {
    let mut members: Vec<UserId> = Vec::new();
    for mention in mentions {
        let member = mention.resolve(|name| named.get(name).copied()).map(UserId::from_i64);
        if let Some(member) = member.filter(|m| *m != author && !members.contains(m)) {
            members.push(member);
        }
    }
    members
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOBODY: Markers = Markers { read: 5, delivered: 7 };

    #[test]
    fn prefix_ranges_hold_every_key_with_the_prefix_in_any_case() {
        let (low, high) = prefix_range("Ca");
        for key in ["ca", "café", "ca%_", "cazzz"] {
            assert!(low.as_str() <= key && key < high.as_str(), "{key}");
        }
        for key in ["c", "cb", "b", "da"] {
            assert!(!(low.as_str() <= key && key < high.as_str()), "{key}");
        }
    }

    #[test]
    fn markers_never_go_back_nor_past_the_newest_event() {
        let moved = NOBODY.advance(RoomKind::Dm, 20, Some(3), Some(4));
        assert_eq!(moved, NOBODY, "lower values change nothing");
        let moved = NOBODY.advance(RoomKind::Dm, 20, Some(50), None);
        assert_eq!(moved, Markers { read: 20, delivered: 20 }, "capped, and read is delivered");
        let moved = NOBODY.advance(RoomKind::Dm, 20, None, Some(9));
        assert_eq!(moved, Markers { read: 5, delivered: 9 });
    }

    #[test]
    fn delivery_is_tracked_in_dms_only() {
        let moved = NOBODY.advance(RoomKind::Private, 20, None, Some(9));
        assert_eq!(moved, NOBODY);
        let moved = NOBODY.advance(RoomKind::Public, 20, Some(8), Some(12));
        assert_eq!(moved, Markers { read: 8, delivered: 8 });
    }

    #[test]
    fn owners_delete_anything_but_in_dms_only_authors_do() {
        let (alice, bob) = (UserId::from_i64(1), UserId::from_i64(2));
        assert!(may_delete(alice, RoomRole::Member, RoomKind::Dm, alice));
        assert!(may_delete(alice, RoomRole::Owner, RoomKind::Private, bob));
        assert!(!may_delete(alice, RoomRole::Owner, RoomKind::Dm, bob));
        assert!(!may_delete(alice, RoomRole::Member, RoomKind::Public, bob));
    }

    #[test]
    fn a_new_emoji_needs_room_under_the_limit() {
        assert!(may_react(false, MAX_REACTIONS_PER_MESSAGE - 1));
        assert!(!may_react(false, MAX_REACTIONS_PER_MESSAGE));
        assert!(may_react(true, MAX_REACTIONS_PER_MESSAGE));
    }
}
