-- Daily partitions of pings, created ahead of need by the writer (and callable from plain SQL).
-- A day is a UTC day. Creating a day whose rows already sit in pings_default moves them into the
-- new partition in the same transaction, so nothing is lost and no row is stored twice.

CREATE OR REPLACE FUNCTION uptimelab_ensure_pings_partition(day date) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    part text        := format('pings_%s', to_char(day, 'YYYYMMDD'));
    lo   timestamptz := day::timestamp AT TIME ZONE 'UTC';
    hi   timestamptz := (day + 1)::timestamp AT TIME ZONE 'UTC';
    held boolean     := false;
BEGIN
    IF to_regclass(quote_ident(part)) IS NOT NULL THEN
        RETURN false;
    END IF;
    -- Serialise creators (several collectors, an import) so that two never race on one day.
    PERFORM pg_advisory_xact_lock(hashtext('uptimelab.pings_partitions'));
    IF to_regclass(quote_ident(part)) IS NOT NULL THEN
        RETURN false;
    END IF;

    IF EXISTS (SELECT 1 FROM pings_default WHERE checked_at >= lo AND checked_at < hi) THEN
        held := true;
        CREATE TEMP TABLE uptimelab_moved_pings (LIKE pings) ON COMMIT DROP;
        WITH moved AS (
            DELETE FROM pings_default WHERE checked_at >= lo AND checked_at < hi RETURNING *
        )
        INSERT INTO uptimelab_moved_pings SELECT * FROM moved;
    END IF;

    EXECUTE format('CREATE TABLE %I PARTITION OF pings FOR VALUES FROM (%L) TO (%L)', part, lo, hi);

    IF held THEN
        INSERT INTO pings SELECT * FROM uptimelab_moved_pings;
        DROP TABLE uptimelab_moved_pings;
    END IF;
    RETURN true;
END;
$$;
