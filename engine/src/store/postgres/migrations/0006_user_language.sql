-- webcare's store on PostgreSQL, version 6: each inbox user's chosen language (issue 14), so
-- the choice follows them to any browser. NULL until they choose; the inbox then follows the
-- browser's Accept-Language.
ALTER TABLE users ADD COLUMN language text;
