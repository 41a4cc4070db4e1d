-- Search (store/search.rs): each message's text as terms (hashes of every run of one, two
-- and three folded characters) in a full-text index that holds no text. Its rowid is the
-- message's place in search_rows, numbered as messages are stored, so reading the index
-- newest first is reading it by rowid, backwards. Written in the same transaction as the
-- message (store/sqlite/ops/messages.rs); a deleted message leaves both.
CREATE TABLE search_rows (
    id         INTEGER PRIMARY KEY,
    room_id    INTEGER NOT NULL,
    seq        INTEGER NOT NULL,
    author_id  INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX search_rows_message ON search_rows (room_id, seq);

-- detail=none: the index records which messages hold a term, not where (the search matches
-- the text itself afterwards). secure-delete: a deleted message's entries are removed from
-- the index's pages, not just marked.
CREATE VIRTUAL TABLE search_text USING fts5 (
    terms, content = '', contentless_delete = 1, detail = none,
    tokenize = 'ascii'
);
INSERT INTO search_text (search_text, rank) VALUES ('secure-delete', 1);

-- Messages stored before search came in, oldest first: the store indexes them as it opens
-- (store/sqlite/search.rs) and empties this table.
CREATE TABLE search_backlog (
    id      INTEGER PRIMARY KEY,
    room_id INTEGER NOT NULL,
    seq     INTEGER NOT NULL
);
INSERT INTO search_backlog (room_id, seq)
    SELECT room_id, seq FROM messages WHERE deleted_at IS NULL ORDER BY created_at, seq;
