-- Accounts, sessions, rooms, memberships and messages.
-- An applied migration is never edited: change the schema with a new file.
-- Ids are random positive 63-bit integers (see src/domain/id.rs); times are Unix milliseconds.

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    username      TEXT    NOT NULL,            -- lower case; see Username::parse
    display_name  TEXT    NOT NULL,
    display_key   TEXT    NOT NULL,            -- display_name in lower case (Unicode), for search
    password_hash TEXT    NOT NULL,            -- argon2id, PHC string
    created_at    INTEGER NOT NULL
);
CREATE UNIQUE INDEX users_username ON users (username);
CREATE INDEX users_display_key ON users (display_key);

CREATE TABLE sessions (
    token_hash BLOB    PRIMARY KEY,            -- SHA-256 of the bearer token
    id         INTEGER NOT NULL UNIQUE,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE rooms (
    id         INTEGER PRIMARY KEY,
    kind       TEXT    NOT NULL CHECK (kind IN ('public', 'private', 'dm')),
    name       TEXT,                           -- NULL for a DM: each side sees the other's name
    name_key   TEXT,                           -- name in lower case (Unicode), for uniqueness and search
    created_by INTEGER REFERENCES users (id),
    created_at INTEGER NOT NULL,
    last_seq   INTEGER NOT NULL DEFAULT 0      -- seq of the room's newest event
);
CREATE UNIQUE INDEX rooms_public_name ON rooms (name_key) WHERE kind = 'public';

CREATE TABLE memberships (
    room_id       INTEGER NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role          TEXT    NOT NULL CHECK (role IN ('owner', 'member')),
    joined_at     INTEGER NOT NULL,
    last_read_seq INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (room_id, user_id)
) WITHOUT ROWID;
CREATE INDEX memberships_user ON memberships (user_id, room_id);

-- The one DM room of each pair of users; user_low <= user_high.
CREATE TABLE dm_pairs (
    user_low  INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    user_high INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    room_id   INTEGER NOT NULL UNIQUE REFERENCES rooms (id) ON DELETE CASCADE,
    PRIMARY KEY (user_low, user_high)
) WITHOUT ROWID;

CREATE TABLE messages (
    room_id    INTEGER NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL,
    id         INTEGER NOT NULL,
    author_id  INTEGER NOT NULL REFERENCES users (id),
    body       TEXT    NOT NULL,
    client_id  TEXT,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (room_id, seq)
) WITHOUT ROWID;
CREATE UNIQUE INDEX messages_id ON messages (id);
CREATE UNIQUE INDEX messages_client_id ON messages (room_id, author_id, client_id)
    WHERE client_id IS NOT NULL;
