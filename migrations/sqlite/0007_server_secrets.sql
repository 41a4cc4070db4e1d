-- Secrets the server makes for itself once and every start (and every node) reads back:
-- the key that signs device cookies (limits on failed logins, auth/device.rs).
CREATE TABLE server_secrets (
    name TEXT PRIMARY KEY NOT NULL,
    value BLOB NOT NULL
);
