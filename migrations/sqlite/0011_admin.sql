-- Administration: who may administer the server, who may no longer sign in, and what
-- administrators did.
ALTER TABLE users ADD COLUMN is_admin INTEGER NOT NULL DEFAULT 0;
-- When the account was deactivated; NULL while it is active.
ALTER TABLE users ADD COLUMN deactivated_at INTEGER;

CREATE TABLE admin_actions (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    at     INTEGER NOT NULL,
    -- "user:<username>" for the web client, "cli:<os user>" for `confab admin`.
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL
);
