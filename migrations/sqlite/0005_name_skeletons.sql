-- Usernames and public room names are unique under their look-alike keys as well
-- (domain::lookalike_key: UTS #39 confusable skeletons, case and accents folded), so that
-- no name can pass for another: `paypa1` beside `paypal`, `gеneral` with a Cyrillic `е`.
-- The unique indexes decide, so two registrations at once cannot both pass.
--
-- SQL cannot compute a key: rows from before this migration have NULL (a unique index
-- admits any number of NULLs) until the server fills them in as it starts
-- (store/skeletons.rs), where two existing names that look alike both keep working.
ALTER TABLE users ADD COLUMN username_skeleton TEXT;   -- lookalike_key(username)
CREATE UNIQUE INDEX users_username_skeleton ON users (username_skeleton);

ALTER TABLE rooms ADD COLUMN name_skeleton TEXT;       -- lookalike_key(name); public rooms only
CREATE UNIQUE INDEX rooms_public_name_skeleton ON rooms (name_skeleton) WHERE kind = 'public';
