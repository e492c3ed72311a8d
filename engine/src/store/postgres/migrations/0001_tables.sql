-- webcare's store on PostgreSQL, version 1. One table per kind of record, with the columns a
-- report or an analyst reads. The decision, the conversation facts and the platform message are
-- also kept whole as jsonb (`decision`, `facts`, `message`), so an explanation or a replay gets
-- back exactly what was decided; everything a report filters or groups on is a column of its own.

-- Messages and outbox entries share one numbering: the bot's reply to a message has the
-- message's number, an agent's reply takes a number of its own.
CREATE SEQUENCE item_seq MINVALUE 0 START 0;

CREATE TABLE conversations (
    channel           text        NOT NULL,
    id                text        NOT NULL,
    state             text        NOT NULL CHECK (state IN ('bot', 'human', 'closed')),
    participants      text[]      NOT NULL DEFAULT '{}',
    started_at        timestamptz NOT NULL,
    last_activity     timestamptz NOT NULL,
    messages          bigint      NOT NULL,
    today             date        NOT NULL,
    messages_today    bigint      NOT NULL,
    auto_replies      bigint      NOT NULL,
    -- When its complaints arrived, the last seven days only.
    recent_complaints timestamptz[] NOT NULL DEFAULT '{}',
    -- The open or claimed escalation new escalating messages join.
    open_escalation   bigint,
    PRIMARY KEY (channel, id)
);
CREATE INDEX conversations_participants ON conversations USING gin (participants);
CREATE INDEX conversations_idle ON conversations (last_activity) WHERE open_escalation IS NULL;

CREATE TABLE messages (
    seq          bigint      PRIMARY KEY,
    channel      text        NOT NULL,
    id           text        NOT NULL,
    conversation text        NOT NULL,
    author       text        NOT NULL,
    text         text        NOT NULL,
    received_at  timestamptz NOT NULL,
    stored_at    timestamptz NOT NULL,
    -- The channel's mode when it was taken in: live, shadow or listen.
    mode         text        NOT NULL,
    action       text        NOT NULL CHECK (action IN ('answer', 'escalate', 'log')),
    team         text,
    priority     text,
    category     text        NOT NULL,
    topics       text[]      NOT NULL,
    sentiment    text        NOT NULL,
    rulebook     text        NOT NULL,
    reply        text,
    message      jsonb       NOT NULL,
    decision     jsonb       NOT NULL,
    facts        jsonb       NOT NULL,
    -- The shadow (candidate) rulebook's decision, never acted on.
    shadow       jsonb,
    -- A delivery is taken in once, whichever instance receives it.
    CONSTRAINT messages_delivery UNIQUE (channel, id)
);
CREATE INDEX messages_received ON messages (received_at, seq);
CREATE INDEX messages_conversation ON messages (channel, conversation, seq);

CREATE TABLE escalations (
    id                bigint      PRIMARY KEY GENERATED ALWAYS AS IDENTITY (MINVALUE 0 START 0),
    channel           text        NOT NULL,
    conversation      text        NOT NULL,
    team              text        NOT NULL,
    priority          text        NOT NULL,
    reason            text        NOT NULL,
    status            text        NOT NULL CHECK (status IN ('open', 'claimed', 'resolved')),
    -- Who claimed or resolved it.
    status_by         text,
    created_at        timestamptz NOT NULL,
    sla_deadline      timestamptz,
    -- The platform ids of the messages it covers, in order.
    messages          text[]      NOT NULL,
    -- When an agent first replied: the first human response, which stops the SLA clock.
    first_response_at timestamptz
);
CREATE INDEX escalations_unresolved ON escalations (id) WHERE status <> 'resolved';
CREATE INDEX escalations_conversation ON escalations (channel, conversation);

CREATE TABLE escalation_history (
    escalation bigint      NOT NULL REFERENCES escalations ON DELETE CASCADE,
    n          bigint      GENERATED ALWAYS AS IDENTITY,
    at         timestamptz NOT NULL,
    actor      text        NOT NULL,
    change     text        NOT NULL,
    PRIMARY KEY (escalation, n)
);

CREATE TABLE escalation_notes (
    escalation bigint      NOT NULL REFERENCES escalations ON DELETE CASCADE,
    n          bigint      GENERATED ALWAYS AS IDENTITY,
    at         timestamptz NOT NULL,
    author     text        NOT NULL,
    text       text        NOT NULL,
    PRIMARY KEY (escalation, n)
);

CREATE TABLE escalation_replies (
    escalation bigint      NOT NULL REFERENCES escalations ON DELETE CASCADE,
    n          bigint      GENERATED ALWAYS AS IDENTITY,
    at         timestamptz NOT NULL,
    author     text        NOT NULL,
    outbox     bigint      NOT NULL,
    PRIMARY KEY (escalation, n)
);

CREATE TABLE sla_breaches (
    escalation    bigint      NOT NULL REFERENCES escalations ON DELETE CASCADE,
    n             bigint      GENERATED ALWAYS AS IDENTITY,
    deadline      timestamptz NOT NULL,
    from_team     text        NOT NULL,
    to_team       text        NOT NULL,
    from_priority text        NOT NULL,
    to_priority   text        NOT NULL,
    next_deadline timestamptz,
    at            timestamptz NOT NULL,
    PRIMARY KEY (escalation, n)
);

CREATE TABLE outbox (
    id              bigint      PRIMARY KEY,
    channel         text        NOT NULL,
    conversation    text        NOT NULL,
    in_reply_to     text        NOT NULL,
    text            text        NOT NULL,
    status          text        NOT NULL CHECK (status IN ('pending', 'sent', 'dead')),
    attempts        integer     NOT NULL DEFAULT 0,
    last_error      text,
    created_at      timestamptz NOT NULL,
    -- NULL: at once.
    next_attempt_at timestamptz,
    sent_at         timestamptz,
    -- An agent's reply, or a bot reply whose message is gone: the entry stands on its own.
    own_details     boolean     NOT NULL DEFAULT false,
    -- The instance whose outbox worker took it, until when (server time); another instance
    -- takes it over only after that, so a reply is sent once.
    claimed_by      text,
    claimed_until   timestamptz
);
CREATE INDEX outbox_pending ON outbox (channel, conversation, id) WHERE status = 'pending';
CREATE INDEX outbox_conversation ON outbox (channel, conversation, id);

CREATE TABLE users (
    login         text        PRIMARY KEY,
    name          text        NOT NULL,
    role          text        NOT NULL CHECK (role IN ('agent', 'lead')),
    teams         text[]      NOT NULL,
    -- An argon2 PHC string; never a password.
    password_hash text        NOT NULL,
    created_at    timestamptz NOT NULL
);

-- API tokens by the SHA-256 digest of their text; never the token itself.
CREATE TABLE api_tokens (
    digest     bytea       PRIMARY KEY,
    login      text        NOT NULL REFERENCES users ON DELETE CASCADE,
    created_at timestamptz NOT NULL
);
CREATE INDEX api_tokens_login ON api_tokens (login);

CREATE TABLE audit (
    id      bigint      PRIMARY KEY GENERATED ALWAYS AS IDENTITY (MINVALUE 0 START 0),
    at      timestamptz NOT NULL,
    actor   text        NOT NULL,
    action  text        NOT NULL,
    subject text        NOT NULL,
    details text        NOT NULL
);

CREATE TABLE rulebook_versions (
    version text PRIMARY KEY
);

CREATE TABLE rulebook_files (
    version  text    NOT NULL REFERENCES rulebook_versions ON DELETE CASCADE,
    position integer NOT NULL,
    role     text    NOT NULL,
    path     text    NOT NULL,
    text     text    NOT NULL,
    PRIMARY KEY (version, position)
);

CREATE TABLE rulebook_activations (
    id      bigint      PRIMARY KEY GENERATED ALWAYS AS IDENTITY,
    version text        NOT NULL REFERENCES rulebook_versions,
    at      timestamptz NOT NULL,
    by      text        NOT NULL
);

-- Settings a lead changes at run time. `crisis_switch`: true, false, or NULL (follow the rulebook).
CREATE TABLE settings (
    name  text PRIMARY KEY,
    value jsonb
);
