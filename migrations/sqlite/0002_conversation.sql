-- Live conversation: edits, deletes, reactions, replies, mentions, receipts, last seen.
-- Every change to a message takes the room's next seq and records it in changed_seq, so
-- that catching up means "every message whose changed_seq is after mine".

ALTER TABLE users ADD COLUMN last_seen_at INTEGER;

-- The highest seq the member's client has confirmed receiving (for "delivered" in DMs).
ALTER TABLE memberships ADD COLUMN delivered_seq INTEGER NOT NULL DEFAULT 0;
UPDATE memberships SET delivered_seq = last_read_seq;

ALTER TABLE messages ADD COLUMN changed_seq INTEGER NOT NULL DEFAULT 0;
UPDATE messages SET changed_seq = seq;
ALTER TABLE messages ADD COLUMN edited_at INTEGER;
ALTER TABLE messages ADD COLUMN deleted_at INTEGER;      -- a tombstone: body is '' from then on
ALTER TABLE messages ADD COLUMN reply_to INTEGER;        -- id of a message in the same room
CREATE INDEX messages_changed ON messages (room_id, changed_seq);

CREATE TABLE reactions (
    message_id INTEGER NOT NULL,
    emoji      TEXT    NOT NULL,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (message_id, emoji, user_id)
) WITHOUT ROWID;

-- Who a message mentions; seq is the message's, for counting mentions after a read marker.
CREATE TABLE mentions (
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    room_id    INTEGER NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL,
    message_id INTEGER NOT NULL,
    PRIMARY KEY (user_id, room_id, seq)
) WITHOUT ROWID;
CREATE INDEX mentions_message ON mentions (message_id);

-- Counting unread messages reads only this index: no deleted rows, no bodies.
CREATE INDEX messages_unread ON messages (room_id, seq, author_id) WHERE deleted_at IS NULL;
