-- Blocks, and who added each member (issue 11).

-- A user blocks another: the blocked user can no longer open or write in a DM with the
-- blocker, nor add them to a room, and the blocker no longer sees their DM. Blocks go with
-- either account.
CREATE TABLE blocks (
    blocker    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    blocked    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (blocker, blocked),
    CHECK (blocker <> blocked)
) WITHOUT ROWID;
-- Who blocks a user, for the checks made on the blocked user's writes.
CREATE INDEX blocks_blocked ON blocks (blocked, blocker);

-- The member who added this one; NULL for those who joined by themselves, created the
-- room, or are in a DM. Kept when the adder's account goes (SET NULL).
ALTER TABLE memberships ADD COLUMN added_by INTEGER REFERENCES users (id) ON DELETE SET NULL;
