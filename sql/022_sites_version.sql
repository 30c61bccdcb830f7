-- uptimelab schema, version 22: a version number of the sites table, so that a collector reloads
-- its sites when they changed and not every 30 seconds.
-- Never edit an applied file: add a new numbered file instead.
--
-- A collector on its schedule read every site of the buckets it holds every 30 s, to see sites
-- added, edited or deactivated meanwhile. At 100 000 sites a collector that costs a full read of
-- the rows, a second copy of the list in Python for a moment (its RSS peak, which the allocator
-- keeps: 280 MB against 230 MB between reloads) and a comparison of the two lists, when nearly
-- always nothing changed. Now every statement that changes `sites` bumps `sites_version.version`
-- in its own transaction, and a collector compares the number at each heartbeat: it reloads
-- when the number moved (or the buckets it holds changed), and only then.
--
-- The number is a row, not a sequence: a sequence moves before its transaction commits, so a
-- collector could read the new number with the old sites and never reload. The row is updated
-- once per statement (a `sites import` of 10 000 rows bumps it once); writers of sites wait for
-- one another on it until they commit, which the rare, human-made changes of sites can afford.
-- With Citus, sites_version is a reference table like sites.

CREATE TABLE IF NOT EXISTS sites_version (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    version  bigint  NOT NULL DEFAULT 0
);
INSERT INTO sites_version (only_row, version) VALUES (true, 0) ON CONFLICT DO NOTHING;

CREATE OR REPLACE FUNCTION uptimelab_sites_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE sites_version SET version = version + 1 WHERE only_row;
    RETURN NULL;
END;
$$;

DROP TRIGGER IF EXISTS sites_changed ON sites;
CREATE TRIGGER sites_changed AFTER INSERT OR UPDATE OR DELETE ON sites
    FOR EACH STATEMENT EXECUTE FUNCTION uptimelab_sites_changed();
DROP TRIGGER IF EXISTS sites_truncated ON sites;
CREATE TRIGGER sites_truncated AFTER TRUNCATE ON sites
    FOR EACH STATEMENT EXECUTE FUNCTION uptimelab_sites_changed();
