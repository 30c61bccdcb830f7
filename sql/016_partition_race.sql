-- uptimelab schema, version 16: two writers creating the same day's partition at once.
-- Never edit an applied file: add a new numbered file instead.
--
-- The partition maker (sql/003_stats.sql) checks again after its advisory lock that the day does
-- not exist yet, with to_regclass. That reads the catalog cache, which a wait on an advisory lock
-- does not refresh: the second of two collectors storing their first batch of a day at the same
-- moment did not see the partition the first had just committed, and its CREATE TABLE failed
-- ("relation pings_YYYYMMDD already exists"). The batch was then taken for a refusal and
-- quarantined. Now the check after the lock reads pg_class with the statement's snapshot, and a
-- partition made meanwhile all the same (a caller in REPEATABLE READ) rolls back this call's
-- move and says false, as when the day existed.

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
    PERFORM pg_advisory_xact_lock(hashtext('uptimelab.pings_partitions'));
    IF EXISTS (SELECT 1 FROM pg_class AS c
                WHERE c.relname = part
                  AND c.relnamespace = (SELECT p.relnamespace FROM pg_class AS p
                                         WHERE p.oid = 'pings'::regclass)) THEN
        RETURN false;
    END IF;
    BEGIN
        IF EXISTS (SELECT 1 FROM pings_default WHERE checked_at >= lo AND checked_at < hi) THEN
            held := true;
            CREATE TEMP TABLE uptimelab_moved_pings (LIKE pings) ON COMMIT DROP;
            WITH moved AS (
                DELETE FROM pings_default WHERE checked_at >= lo AND checked_at < hi RETURNING *
            )
            INSERT INTO uptimelab_moved_pings SELECT * FROM moved;
        END IF;
        EXECUTE format('CREATE TABLE %I PARTITION OF pings FOR VALUES FROM (%L) TO (%L)',
                       part, lo, hi);
        -- Straight into the new partition: no trigger on pings fires, the rollup stays exact.
        IF held THEN
            EXECUTE format('INSERT INTO %I SELECT * FROM uptimelab_moved_pings', part);
            DROP TABLE uptimelab_moved_pings;
        END IF;
    EXCEPTION WHEN duplicate_table THEN
        RETURN false;  -- made meanwhile: this block's move is rolled back with it
    END;
    RETURN true;
END;
$$;
