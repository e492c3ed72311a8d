-- webcare's store on PostgreSQL, version 4: what `forget` erased stays erased (issue 15). A
-- bridge that delivers an erased message again (same channel and platform id) must not get it
-- stored as new. Only a SHA-256 of `channel:id` is kept, never the id or anything of the
-- message, with the time of the erasure.
CREATE TABLE erased_deliveries (
    digest    bytea       PRIMARY KEY,
    erased_at timestamptz NOT NULL
);
