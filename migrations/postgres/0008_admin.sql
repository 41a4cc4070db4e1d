-- Administration: who may administer the server, who may no longer sign in, and what
-- administrators did.
ALTER TABLE users ADD COLUMN is_admin BOOLEAN NOT NULL DEFAULT FALSE;
-- When the account was deactivated; NULL while it is active.
ALTER TABLE users ADD COLUMN deactivated_at BIGINT;

CREATE TABLE admin_actions (
    id     BIGSERIAL PRIMARY KEY,
    at     BIGINT NOT NULL,
    -- "user:<username>" for the web client, "cli:<os user>" for `confab admin`.
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL
);
