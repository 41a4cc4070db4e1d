-- Search, remade (store/search.rs): messages are placed in the search's order by when they
-- were sent, not by when the index took them, so a search's time bounds are bounds on
-- positions and messages indexed late take their place among the others. A message's
-- position is on its row (search_pos, under an index that finds the message a position
-- names); the full-text index holds its terms under that position. A deleted message's
-- terms are taken out of the index with FTS5's 'delete' command, which with secure-delete
-- removes them from the index's pages, where a contentless_delete table (0008) only marked
-- them deleted. Written in the transaction that stores, edits or deletes the message
-- (store/sqlite/ops/messages.rs).
DROP TABLE search_text;
DROP TABLE search_rows;
DELETE FROM search_backlog;

ALTER TABLE messages ADD COLUMN search_pos INTEGER;
CREATE UNIQUE INDEX messages_search_pos ON messages (search_pos) WHERE search_pos IS NOT NULL;

-- detail=none: the index records which messages hold a term, not where (the search matches
-- the text itself afterwards).
CREATE VIRTUAL TABLE search_text USING fts5 (
    terms, content = '', detail = none, tokenize = 'ascii'
);
INSERT INTO search_text (search_text, rank) VALUES ('secure-delete', 1);

-- Which way of making terms the index holds (store/search.rs, TERMS_VERSION). The store
-- remakes the index as it opens when its own differs: 0 is none, so the first start after
-- this migration indexes every message (through search_backlog).
CREATE TABLE search_state (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    terms_version INTEGER NOT NULL
);
INSERT INTO search_state (id, terms_version) VALUES (1, 0);
