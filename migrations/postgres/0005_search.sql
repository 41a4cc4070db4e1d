-- Search (store/search.rs): each message's text as terms (hashes of every run of one, two
-- and three folded characters) in an array under a GIN index, set in the same statement
-- that stores, edits or deletes the message. search_ord numbers messages as they are
-- stored: search reads newest first by it. Messages stored before this migration have
-- neither; the store fills them in as it opens (store/postgres/search.rs).
CREATE SEQUENCE messages_search_order;
ALTER TABLE messages ADD COLUMN search_ord bigint, ADD COLUMN search_terms bigint[];
CREATE INDEX messages_search_terms ON messages USING gin (search_terms);
CREATE INDEX messages_search_ord ON messages (search_ord);
CREATE INDEX messages_unsearchable ON messages (created_at, id)
    WHERE search_ord IS NULL AND deleted_at IS NULL;
