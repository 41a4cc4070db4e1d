-- Search, remade (store/search.rs): a message's place in the search's order (search_ord) is
-- when it was sent, created_at in milliseconds times 4096 plus a small number that tells
-- apart messages of the same millisecond, so a search's time bounds are bounds on
-- positions and messages indexed late take their place among the others. search_terms holds
-- the text's terms and one for the message's room and one for its author, so that the GIN
-- index narrows a search to the searcher's rooms and to an author itself. Both are written
-- by the statement that stores, edits or deletes the message (store/postgres/ops/messages.rs).
--
-- The numbers and terms written before this migration are of the old kind: the store
-- clears them and indexes every live message again as it opens, because the version below
-- is not its own (store/postgres/search.rs). This migration does not rewrite the messages
-- itself, so that it stays quick on a large table; until the store has filled the index
-- in, searches find fewer messages, never wrong ones.

-- Which way of making terms the index holds (store/search.rs, TERMS_VERSION); 0 is none.
CREATE TABLE search_state (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    terms_version BIGINT  NOT NULL
);
INSERT INTO search_state (id, terms_version) VALUES (1, 0);

-- A search reads the GIN index's pending list (new entries not yet merged into the index)
-- whole, every time: up to 4 MB by default, which cost a search of a rare word 5 ms of its
-- 6 (EXPLAIN, 200,000 messages). A short list is merged more often, in smaller batches.
ALTER INDEX messages_search_terms SET (gin_pending_list_limit = 128);
SELECT gin_clean_pending_list('messages_search_terms');
