-- Several instances: what a person's browser needs from whichever instance it reaches.

-- Inbox browser sessions, by the SHA-256 of the cookie (the cookie itself is never stored).
CREATE TABLE inbox_sessions (
    digest     bytea       PRIMARY KEY,
    login      text        NOT NULL,
    csrf       text        NOT NULL,
    expires_at timestamptz NOT NULL,
    -- The user as it was at login; the session ends when the stored user no longer matches.
    stamp      bytea       NOT NULL
);
CREATE INDEX inbox_sessions_expires ON inbox_sessions (expires_at);

-- Wrong passwords (and admin tokens) per key (`login:anna@10.0.0.1`, `ip:10.0.0.1`,
-- `admin:10.0.0.1`), in a sliding window the limiter prunes.
CREATE TABLE login_failures (
    id  bigint      PRIMARY KEY GENERATED ALWAYS AS IDENTITY,
    key text        NOT NULL,
    at  timestamptz NOT NULL
);
CREATE INDEX login_failures_key ON login_failures (key, at);
CREATE INDEX login_failures_at ON login_failures (at);
