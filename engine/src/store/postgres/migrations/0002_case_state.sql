-- webcare's store on PostgreSQL, version 2: what the case rules keep about an escalation besides
-- its status (issue 14): whether the customer waits on us, the first-response SLA as it was set,
-- reopenings, the customer and their language, the satisfaction question and its answer. Kept
-- whole as jsonb (`crate::case::CaseState`), so a new field needs no migration; the score is
-- also a column of its own, for an analyst's GROUP BY.
ALTER TABLE escalations ADD COLUMN case_state jsonb NOT NULL DEFAULT '{}';
ALTER TABLE escalations ADD COLUMN satisfaction smallint
    GENERATED ALWAYS AS ((case_state -> 'survey' ->> 'score')::smallint) STORED;

-- A satisfaction question waits for the customer's next message in this conversation.
ALTER TABLE conversations ADD COLUMN awaiting_score boolean NOT NULL DEFAULT false;

-- When each customer was last asked for a score: never twice within the rulebook's period.
-- `forget` deletes the row with the customer.
CREATE TABLE satisfaction_asked (
    author   text        PRIMARY KEY,
    asked_at timestamptz NOT NULL
);
