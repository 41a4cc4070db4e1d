-- Signing in with an identity provider (auth/oidc.rs, app/sso.rs). An account made that way
-- has no password: its users.password_hash is ''.

-- Identities at OpenID Connect providers, each linked to one account. Who an identity is
-- is the provider's issuer and its subject (`sub`), never an email.
CREATE TABLE identities (
    id         INTEGER PRIMARY KEY,
    issuer     TEXT    NOT NULL,
    subject    TEXT    NOT NULL,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider   TEXT    NOT NULL,            -- the configured provider's id when linked
    email      TEXT,                        -- only one the provider said was verified
    created_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX identities_subject ON identities (issuer, subject);
CREATE INDEX identities_user ON identities (user_id);

-- Sign-in flows under way and sign-ups waiting for a username, each by the SHA-256 of the
-- secret that finishes it (the flow's `state`, the sign-up's cookie). Taken once; the
-- housekeeping sweeps expired ones.
CREATE TABLE sign_in_flows (
    key_hash   BLOB    PRIMARY KEY,
    flow       TEXT    NOT NULL,            -- JSON: app/sso.rs
    expires_at INTEGER NOT NULL
);
CREATE INDEX sign_in_flows_expiry ON sign_in_flows (expires_at);
