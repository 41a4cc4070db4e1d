-- Secrets the server makes for itself once and every node reads back: the key that signs
-- device cookies (limits on failed logins, auth/device.rs).
CREATE TABLE server_secrets (
    name TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);
