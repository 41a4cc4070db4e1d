-- Confab's schema on PostgreSQL: the same tables, columns and meanings as the embedded
-- SQLite database (migrations/sqlite/), so that both stores read rows the same way.
-- An applied migration is never edited: change the schema with a new file.
--
-- Ids are random positive 63-bit integers (see src/domain/id.rs); times are Unix
-- milliseconds; every integer is a BIGINT. Keys that are searched by prefix or kept unique
-- (usernames, names in lower case) use the "C" collation: byte order, which for UTF-8 is
-- code point order, as in SQLite, so that range scans and ORDER BY agree on both stores.

CREATE TABLE users (
    id            BIGINT  PRIMARY KEY,
    username      TEXT    COLLATE "C" NOT NULL,   -- lower case; see Username::parse
    display_name  TEXT    NOT NULL,
    display_key   TEXT    COLLATE "C" NOT NULL,   -- display_name in lower case, for search
    password_hash TEXT    NOT NULL,               -- argon2id, PHC string
    created_at    BIGINT  NOT NULL,
    last_seen_at  BIGINT,
    bio           TEXT    NOT NULL DEFAULT '',
    avatar        TEXT                            -- blob key of a square picture
);
CREATE UNIQUE INDEX users_username ON users (username);
CREATE INDEX users_display_key ON users (display_key);

CREATE TABLE sessions (
    token_hash BYTEA  PRIMARY KEY,                -- SHA-256 of the bearer token
    id         BIGINT NOT NULL UNIQUE,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_expires_at ON sessions (expires_at);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE rooms (
    id         BIGINT PRIMARY KEY,
    kind       TEXT   NOT NULL CHECK (kind IN ('public', 'private', 'dm')),
    name       TEXT,                              -- NULL for a DM: each side sees the other's name
    name_key   TEXT   COLLATE "C",                -- name in lower case, for uniqueness and search
    created_by BIGINT REFERENCES users (id),
    created_at BIGINT NOT NULL,
    -- The seq of the room's newest event. Every change to the room takes the next one with
    -- UPDATE ... SET last_seq = last_seq + 1, which locks this row until the transaction
    -- ends: that lock is what orders a room's changes (ARCHITECTURE.md).
    last_seq   BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX rooms_public_name ON rooms (name_key) WHERE kind = 'public';

CREATE TABLE memberships (
    room_id       BIGINT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id       BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role          TEXT   NOT NULL CHECK (role IN ('owner', 'member')),
    joined_at     BIGINT NOT NULL,
    last_read_seq BIGINT NOT NULL DEFAULT 0,
    delivered_seq BIGINT NOT NULL DEFAULT 0,      -- what reached one of the member's clients
    PRIMARY KEY (room_id, user_id)
);
CREATE INDEX memberships_user ON memberships (user_id, room_id);

-- The one DM room of each pair of users; user_low <= user_high.
CREATE TABLE dm_pairs (
    user_low  BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    user_high BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    room_id   BIGINT NOT NULL UNIQUE REFERENCES rooms (id) ON DELETE CASCADE,
    PRIMARY KEY (user_low, user_high)
);

-- Every change to a message takes the room's next seq and records it in changed_seq, so
-- that catching up means "every message whose changed_seq is after mine".
CREATE TABLE messages (
    room_id     BIGINT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    seq         BIGINT NOT NULL,
    id          BIGINT NOT NULL,
    author_id   BIGINT NOT NULL REFERENCES users (id),
    body        TEXT   NOT NULL,
    client_id   TEXT,
    created_at  BIGINT NOT NULL,
    changed_seq BIGINT NOT NULL,
    edited_at   BIGINT,
    deleted_at  BIGINT,                           -- a tombstone: body is '' from then on
    reply_to    BIGINT,                           -- id of a message in the same room
    PRIMARY KEY (room_id, seq)
);
CREATE UNIQUE INDEX messages_id ON messages (id);
CREATE UNIQUE INDEX messages_client_id ON messages (room_id, author_id, client_id)
    WHERE client_id IS NOT NULL;
CREATE INDEX messages_changed ON messages (room_id, changed_seq);
-- Counting unread messages reads only this index: no deleted rows, no bodies.
CREATE INDEX messages_unread ON messages (room_id, seq, author_id) WHERE deleted_at IS NULL;

CREATE TABLE reactions (
    message_id BIGINT NOT NULL,
    emoji      TEXT   COLLATE "C" NOT NULL,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (message_id, emoji, user_id)
);

-- Who a message mentions; seq is the message's, for counting mentions after a read marker.
CREATE TABLE mentions (
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    room_id    BIGINT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    seq        BIGINT NOT NULL,
    message_id BIGINT NOT NULL,
    PRIMARY KEY (user_id, room_id, seq)
);
CREATE INDEX mentions_message ON mentions (message_id);

-- An uploaded file. Its id is 128 random bits (a URL that cannot be guessed); its bytes live
-- in the blob store under the same id. It belongs to its uploader until a message carries
-- it, and from then on to that message's room.
CREATE TABLE media (
    id            TEXT    PRIMARY KEY,
    uploader_id   BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind          TEXT    NOT NULL CHECK (kind IN ('image', 'video', 'audio', 'file')),
    mime          TEXT    NOT NULL,               -- decided from the bytes, never from the client
    name          TEXT    NOT NULL,               -- a safe file name
    size          BIGINT  NOT NULL,
    width         BIGINT,
    height        BIGINT,
    duration_ms   BIGINT,
    has_thumbnail BOOLEAN NOT NULL DEFAULT FALSE,
    room_id       BIGINT,
    message_id    BIGINT,
    position      BIGINT,                         -- order among the message's attachments
    created_at    BIGINT  NOT NULL
);
CREATE INDEX media_message ON media (message_id, position);
CREATE INDEX media_unattached ON media (created_at) WHERE message_id IS NULL;

-- Sending counts as having read and received everything up to one's own message. The
-- insert does it through this trigger, inside the same statement, which saves the hot path
-- a round trip. (The room's last seq was taken, and the room locked, by the statement
-- before the insert: store/postgres/ops/messages.rs.)
CREATE FUNCTION messages_mark_author() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE memberships
    SET last_read_seq = GREATEST(last_read_seq, NEW.seq),
        delivered_seq = GREATEST(delivered_seq, NEW.seq)
    WHERE room_id = NEW.room_id AND user_id = NEW.author_id;
    RETURN NULL;
END;
$$;
CREATE TRIGGER messages_mark_author AFTER INSERT ON messages
    FOR EACH ROW EXECUTE FUNCTION messages_mark_author();
