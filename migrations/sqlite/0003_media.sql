-- Attachments and profiles.

-- An uploaded file. Its id is 128 random bits (a URL that cannot be guessed); its bytes live
-- in the blob store under the same id. It belongs to its uploader until a message carries
-- it, and from then on to that message's room.
CREATE TABLE media (
    id            TEXT    PRIMARY KEY,
    uploader_id   INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind          TEXT    NOT NULL CHECK (kind IN ('image', 'video', 'audio', 'file')),
    mime          TEXT    NOT NULL,           -- decided from the bytes, never from the client
    name          TEXT    NOT NULL,           -- a safe file name
    size          INTEGER NOT NULL,
    width         INTEGER,
    height        INTEGER,
    duration_ms   INTEGER,
    has_thumbnail INTEGER NOT NULL DEFAULT 0,
    room_id       INTEGER,
    message_id    INTEGER,
    position      INTEGER,                    -- order among the message's attachments
    created_at    INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX media_message ON media (message_id, position);
CREATE INDEX media_unattached ON media (created_at) WHERE message_id IS NULL;

ALTER TABLE users ADD COLUMN bio TEXT NOT NULL DEFAULT '';
-- The blob id of the user's avatar (a square image), if any.
ALTER TABLE users ADD COLUMN avatar TEXT;
