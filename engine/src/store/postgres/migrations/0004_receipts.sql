-- webcare's store on PostgreSQL, version 4: what a platform reported about a reply after it
-- took it (WhatsApp's delivered, read and failed statuses; issue 16), kept beside the reply as
-- jsonb (`crate::case::outbox::Receipt`), so a new kind of report needs no migration. NULL: no
-- report. It goes with the reply's row when retention or `forget` deletes it.
ALTER TABLE outbox ADD COLUMN receipt jsonb;
