-- webcare's store on PostgreSQL, version 7: an inbox action just refused (a reply outside the
-- customer service window, an escalation a colleague claimed first), kept for the escalation
-- page the browser is sent back to, which any instance may serve. It holds the agent's unsent
-- reply, so it lives ten minutes at most and goes with the session.
CREATE TABLE inbox_kept (
    session    bytea       NOT NULL REFERENCES inbox_sessions (digest) ON DELETE CASCADE,
    escalation bigint      NOT NULL,
    -- The refusal and the text as JSON (webcare_inbox::kept).
    kept       text        NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (session, escalation)
);
CREATE INDEX inbox_kept_expires ON inbox_kept (expires_at);
