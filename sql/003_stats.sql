-- Stats: the hourly rollup, kept by a trigger; the reference definition; the fast refresh path.
--
-- The contract. For a window W in {1h, 24h, 7d} and a refresh time T, the window holds a site's
-- pings with checked_at in (T - W, T], from all locations together.
--   uptime_W               100 * up / pings as REAL (computed in float8, then rounded to REAL);
--                          0 with no pings
--   avg_response_time_W    mean response_time_ms of the window's up pings, rounded half away from
--                          zero (exactly: (2 * sum + n) div (2 * n)); 0 with none
-- (7d is 168 hours exactly, whatever the session's time zone does with days.)
--   pings_W                the number of pings in the window
--   current_status,        status and time of the latest ping at or before T (at one instant,
--   last_checked           the greatest location, by code point, wins)
-- A site with no ping at or before T has no row.

ALTER TABLE site_stats
    ADD COLUMN IF NOT EXISTS pings_1h  integer NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS pings_24h integer NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS pings_7d  integer NOT NULL DEFAULT 0;

-- A range scan by time over all sites (the refresh's partial edge hours, loaders).
CREATE INDEX IF NOT EXISTS pings_checked_at_idx ON pings (checked_at);

-- Per site and UTC hour: pings, pings up, and the sum and count of the up pings' response times.
CREATE TABLE IF NOT EXISTS ping_rollup_hourly (
    site_id             uuid        NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    hour                timestamptz NOT NULL,
    pings               integer     NOT NULL,
    pings_up            integer     NOT NULL,
    up_response_ms_sum  bigint      NOT NULL,
    up_response_count   integer     NOT NULL,
    PRIMARY KEY (site_id, hour)
);

-- The rollup holds whole past hours only: every ping with checked_at < the watermark (an hour
-- boundary, never past the present hour) is counted in it, and no later one. The refresh advances
-- the watermark, aggregating each hour once when it has ended: no ping is read twice for it and
-- history is never rescanned. A ping written later into an hour already rolled up (a history
-- import, a replayed spool, a plain INSERT) is added by the trigger below; the collector's own
-- pings are newer than the watermark, so for them the trigger only checks and returns.
CREATE TABLE IF NOT EXISTS ping_rollup_state (
    only_row  boolean     PRIMARY KEY DEFAULT true CHECK (only_row),
    watermark timestamptz NOT NULL
);
INSERT INTO ping_rollup_state (watermark) VALUES ('-infinity') ON CONFLICT DO NOTHING;

-- Writers of pings take this advisory lock shared, the watermark's advance takes it exclusive:
-- an advance never misses the rows of a transaction still in flight.
CREATE OR REPLACE FUNCTION uptimelab_rollup_lock_key() RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$ SELECT 7573720123456789::bigint $$;

CREATE OR REPLACE FUNCTION uptimelab_rollup_pings() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    mark timestamptz;
BEGIN
    PERFORM pg_advisory_xact_lock_shared(uptimelab_rollup_lock_key());
    SELECT watermark INTO mark FROM ping_rollup_state;
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        UPDATE ping_rollup_hourly AS r
           SET pings = r.pings - o.pings,
               pings_up = r.pings_up - o.pings_up,
               up_response_ms_sum = r.up_response_ms_sum - o.rsum,
               up_response_count = r.up_response_count - o.rcount
          FROM (SELECT site_id, date_trunc('hour', checked_at, 'UTC') AS hour,
                       count(*) AS pings,
                       count(*) FILTER (WHERE status = 'up') AS pings_up,
                       coalesce(sum(response_time_ms) FILTER (WHERE status = 'up'), 0) AS rsum,
                       count(response_time_ms) FILTER (WHERE status = 'up') AS rcount
                  FROM old_rows WHERE checked_at < mark GROUP BY 1, 2) AS o
         WHERE r.site_id = o.site_id AND r.hour = o.hour;
    END IF;
    -- Nested IFs: new_rows exists only for INSERT and UPDATE, and plpgsql plans a whole
    -- condition at once.
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        IF EXISTS (SELECT 1 FROM new_rows WHERE checked_at < mark) THEN
            INSERT INTO ping_rollup_hourly AS r
                   (site_id, hour, pings, pings_up, up_response_ms_sum, up_response_count)
            SELECT site_id, date_trunc('hour', checked_at, 'UTC'),
                   count(*),
                   count(*) FILTER (WHERE status = 'up'),
                   coalesce(sum(response_time_ms) FILTER (WHERE status = 'up'), 0),
                   count(response_time_ms) FILTER (WHERE status = 'up')
              FROM new_rows WHERE checked_at < mark GROUP BY 1, 2
            ON CONFLICT (site_id, hour) DO UPDATE
               SET pings = r.pings + EXCLUDED.pings,
                   pings_up = r.pings_up + EXCLUDED.pings_up,
                   up_response_ms_sum = r.up_response_ms_sum + EXCLUDED.up_response_ms_sum,
                   up_response_count = r.up_response_count + EXCLUDED.up_response_count;
        END IF;
    END IF;
    RETURN NULL;
END;
$$;

-- TRUNCATE empties the rollup and starts it again from nothing.
CREATE OR REPLACE FUNCTION uptimelab_rollup_truncated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(uptimelab_rollup_lock_key());
    DELETE FROM ping_rollup_hourly;
    UPDATE ping_rollup_state SET watermark = '-infinity';
    RETURN NULL;
END;
$$;

DROP TRIGGER IF EXISTS pings_rollup_insert ON pings;
CREATE TRIGGER pings_rollup_insert AFTER INSERT ON pings
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION uptimelab_rollup_pings();
DROP TRIGGER IF EXISTS pings_rollup_update ON pings;
CREATE TRIGGER pings_rollup_update AFTER UPDATE ON pings
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION uptimelab_rollup_pings();
DROP TRIGGER IF EXISTS pings_rollup_delete ON pings;
CREATE TRIGGER pings_rollup_delete AFTER DELETE ON pings
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION uptimelab_rollup_pings();
DROP TRIGGER IF EXISTS pings_rollup_truncate ON pings;
CREATE TRIGGER pings_rollup_truncate AFTER TRUNCATE ON pings
    FOR EACH STATEMENT EXECUTE FUNCTION uptimelab_rollup_truncated();

-- Roll up every whole hour before ``upto`` not yet rolled up, and move the watermark there.
-- Returns the watermark.
CREATE OR REPLACE FUNCTION uptimelab_advance_rollup(upto timestamptz DEFAULT now())
RETURNS timestamptz
LANGUAGE plpgsql AS $$
DECLARE
    mark   timestamptz;
    target timestamptz := date_trunc('hour', least(upto, now()), 'UTC');
BEGIN
    PERFORM pg_advisory_xact_lock(uptimelab_rollup_lock_key());
    SELECT watermark INTO mark FROM ping_rollup_state;
    IF target <= mark THEN
        RETURN mark;
    END IF;
    INSERT INTO ping_rollup_hourly AS r
           (site_id, hour, pings, pings_up, up_response_ms_sum, up_response_count)
    SELECT site_id, date_trunc('hour', checked_at, 'UTC'),
           count(*),
           count(*) FILTER (WHERE status = 'up'),
           coalesce(sum(response_time_ms) FILTER (WHERE status = 'up'), 0),
           count(response_time_ms) FILTER (WHERE status = 'up')
      FROM pings WHERE checked_at >= mark AND checked_at < target GROUP BY 1, 2
    ON CONFLICT (site_id, hour) DO UPDATE
       SET pings = r.pings + EXCLUDED.pings,
           pings_up = r.pings_up + EXCLUDED.pings_up,
           up_response_ms_sum = r.up_response_ms_sum + EXCLUDED.up_response_ms_sum,
           up_response_count = r.up_response_count + EXCLUDED.up_response_count;
    UPDATE ping_rollup_state SET watermark = target;
    RETURN target;
END;
$$;

-- Pings stored before this file are rolled up once, here.
SELECT uptimelab_advance_rollup(now());

-- The partition maker, again: rows moved out of pings_default go straight into the new partition,
-- which fires no trigger on pings, so the rollup (which already counts them) stays exact.
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
        EXECUTE format('INSERT INTO %I SELECT * FROM uptimelab_moved_pings', part);
        DROP TABLE uptimelab_moved_pings;
    END IF;
    RETURN true;
END;
$$;

-- The definition of truth: every column from raw pings, for a refresh time t.
CREATE OR REPLACE FUNCTION uptimelab_site_stats_reference(t timestamptz)
RETURNS TABLE (
    site_id uuid,
    uptime_1h real, uptime_24h real, uptime_7d real,
    avg_response_time_1h integer, avg_response_time_24h integer, avg_response_time_7d integer,
    pings_1h integer, pings_24h integer, pings_7d integer,
    current_status text, last_checked timestamptz
)
LANGUAGE sql STABLE AS $$
    WITH counted AS (
        SELECT p.site_id,
               count(*) FILTER (WHERE p.checked_at > t - interval '1 hour') AS n1,
               count(*) FILTER (WHERE p.checked_at > t - interval '24 hours') AS n24,
               count(*) FILTER (WHERE p.checked_at > t - interval '168 hours') AS n7,
               count(*) FILTER (WHERE p.checked_at > t - interval '1 hour' AND p.status = 'up') AS u1,
               count(*) FILTER (WHERE p.checked_at > t - interval '24 hours' AND p.status = 'up') AS u24,
               count(*) FILTER (WHERE p.checked_at > t - interval '168 hours' AND p.status = 'up') AS u7,
               sum(p.response_time_ms) FILTER (WHERE p.checked_at > t - interval '1 hour' AND p.status = 'up') AS s1,
               sum(p.response_time_ms) FILTER (WHERE p.checked_at > t - interval '24 hours' AND p.status = 'up') AS s24,
               sum(p.response_time_ms) FILTER (WHERE p.checked_at > t - interval '168 hours' AND p.status = 'up') AS s7,
               count(p.response_time_ms) FILTER (WHERE p.checked_at > t - interval '1 hour' AND p.status = 'up') AS c1,
               count(p.response_time_ms) FILTER (WHERE p.checked_at > t - interval '24 hours' AND p.status = 'up') AS c24,
               count(p.response_time_ms) FILTER (WHERE p.checked_at > t - interval '168 hours' AND p.status = 'up') AS c7
          FROM pings AS p
         WHERE p.checked_at <= t
         GROUP BY p.site_id
    ),
    latest AS (
        SELECT DISTINCT ON (p.site_id) p.site_id, p.status, p.checked_at
          FROM pings AS p
         WHERE p.checked_at <= t
         ORDER BY p.site_id, p.checked_at DESC, p.location COLLATE "C" DESC
    )
    SELECT c.site_id,
           coalesce((100 * c.u1)::float8 / nullif(c.n1, 0), 0)::real,
           coalesce((100 * c.u24)::float8 / nullif(c.n24, 0), 0)::real,
           coalesce((100 * c.u7)::float8 / nullif(c.n7, 0), 0)::real,
           coalesce(div(2 * c.s1 + c.c1, nullif(2 * c.c1, 0)), 0)::integer,
           coalesce(div(2 * c.s24 + c.c24, nullif(2 * c.c24, 0)), 0)::integer,
           coalesce(div(2 * c.s7 + c.c7, nullif(2 * c.c7, 0)), 0)::integer,
           c.n1::integer, c.n24::integer, c.n7::integer,
           l.status, l.checked_at
      FROM counted AS c JOIN latest AS l USING (site_id)
$$;

CREATE OR REPLACE VIEW site_stats_reference AS
    SELECT * FROM uptimelab_site_stats_reference(now());

-- The fast path: whole hours from the rollup, only the partial edge hours from raw pings.
-- For a window (lo, t]: a = the first hour boundary after lo, b = the last one at or before t,
-- c = b, or the watermark where the rollup stops short of b. Hours [a, c) come from the rollup;
-- (lo, a) and [c, t] are read raw ([c, t] in one scan for all three windows).
-- only_sites NULL means every site.
CREATE OR REPLACE FUNCTION uptimelab_site_stats_at(t timestamptz, only_sites uuid[] DEFAULT NULL)
RETURNS TABLE (
    site_id uuid,
    uptime_1h real, uptime_24h real, uptime_7d real,
    avg_response_time_1h integer, avg_response_time_24h integer, avg_response_time_7d integer,
    pings_1h integer, pings_24h integer, pings_7d integer,
    current_status text, last_checked timestamptz
)
LANGUAGE sql STABLE AS $$
    WITH windows (w, lo, a, c) AS (
        SELECT v.w, t - v.width, v.a, greatest(v.a, least(date_trunc('hour', t, 'UTC'), st.watermark))
          FROM (SELECT w, width, date_trunc('hour', t - width, 'UTC') + interval '1 hour' AS a
                  FROM (VALUES (1, interval '1 hour'), (24, interval '24 hours'),
                               (168, interval '168 hours')) AS x (w, width)) AS v
         CROSS JOIN ping_rollup_state AS st
    ),
    parts AS (
        SELECT r.site_id, x.w, r.pings::bigint AS n, r.pings_up::bigint AS u,
               r.up_response_ms_sum::numeric AS s, r.up_response_count::bigint AS c
          FROM windows AS x
          JOIN ping_rollup_hourly AS r ON r.hour >= x.a AND r.hour < x.c
         WHERE only_sites IS NULL OR r.site_id = ANY (only_sites)
        UNION ALL
        SELECT p.site_id, x.w, count(*), count(*) FILTER (WHERE p.status = 'up'),
               sum(p.response_time_ms) FILTER (WHERE p.status = 'up'),
               count(p.response_time_ms) FILTER (WHERE p.status = 'up')
          FROM windows AS x
          JOIN pings AS p ON p.checked_at > x.lo AND p.checked_at < x.a
         WHERE only_sites IS NULL OR p.site_id = ANY (only_sites)
         GROUP BY p.site_id, x.w
        UNION ALL
        SELECT p.site_id, x.w, count(*), count(*) FILTER (WHERE p.status = 'up'),
               sum(p.response_time_ms) FILTER (WHERE p.status = 'up'),
               count(p.response_time_ms) FILTER (WHERE p.status = 'up')
          FROM pings AS p
          JOIN windows AS x ON p.checked_at >= x.c
         WHERE p.checked_at >= (SELECT min(windows.c) FROM windows) AND p.checked_at <= t
           AND (only_sites IS NULL OR p.site_id = ANY (only_sites))
         GROUP BY p.site_id, x.w
    ),
    summed AS (
        SELECT parts.site_id,
               sum(n) FILTER (WHERE w = 1) AS n1, sum(n) FILTER (WHERE w = 24) AS n24,
               sum(n) FILTER (WHERE w = 168) AS n7,
               sum(u) FILTER (WHERE w = 1) AS u1, sum(u) FILTER (WHERE w = 24) AS u24,
               sum(u) FILTER (WHERE w = 168) AS u7,
               sum(s) FILTER (WHERE w = 1) AS s1, sum(s) FILTER (WHERE w = 24) AS s24,
               sum(s) FILTER (WHERE w = 168) AS s7,
               sum(c) FILTER (WHERE w = 1) AS c1, sum(c) FILTER (WHERE w = 24) AS c24,
               sum(c) FILTER (WHERE w = 168) AS c7
          FROM parts GROUP BY parts.site_id
    ),
    latest AS (
        SELECT s.id AS site_id, l.status, l.checked_at
          FROM sites AS s
         CROSS JOIN LATERAL (
               SELECT p.status, p.checked_at FROM pings AS p
                WHERE p.site_id = s.id AND p.checked_at <= t
                ORDER BY p.checked_at DESC, p.location COLLATE "C" DESC LIMIT 1) AS l
         WHERE only_sites IS NULL OR s.id = ANY (only_sites)
    )
    SELECT l.site_id,
           coalesce((100 * m.u1)::float8 / nullif(m.n1, 0), 0)::real,
           coalesce((100 * m.u24)::float8 / nullif(m.n24, 0), 0)::real,
           coalesce((100 * m.u7)::float8 / nullif(m.n7, 0), 0)::real,
           coalesce(div(2 * m.s1 + m.c1, nullif(2 * m.c1, 0)), 0)::integer,
           coalesce(div(2 * m.s24 + m.c24, nullif(2 * m.c24, 0)), 0)::integer,
           coalesce(div(2 * m.s7 + m.c7, nullif(2 * m.c7, 0)), 0)::integer,
           coalesce(m.n1, 0)::integer, coalesce(m.n24, 0)::integer, coalesce(m.n7, 0)::integer,
           l.status, l.checked_at
      FROM latest AS l LEFT JOIN summed AS m USING (site_id)
$$;

-- Advance the rollup, then upsert site_stats from the fast path for some sites (a cycle's) or
-- all, and drop the rows of those sites that no longer have a ping. Returns the rows written.
CREATE OR REPLACE FUNCTION uptimelab_refresh_site_stats(
    t timestamptz DEFAULT now(), only_sites uuid[] DEFAULT NULL
) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    written integer;
BEGIN
    PERFORM uptimelab_advance_rollup(now());
    WITH fresh AS (
        SELECT * FROM uptimelab_site_stats_at(t, only_sites)
    ),
    gone AS (
        DELETE FROM site_stats AS ss
         WHERE (only_sites IS NULL OR ss.site_id = ANY (only_sites))
           AND NOT EXISTS (SELECT 1 FROM fresh WHERE fresh.site_id = ss.site_id)
    ),
    upserted AS (
        INSERT INTO site_stats AS ss (
            site_id, uptime_1h, uptime_24h, uptime_7d,
            avg_response_time_1h, avg_response_time_24h, avg_response_time_7d,
            pings_1h, pings_24h, pings_7d, current_status, last_checked)
        SELECT f.site_id, f.uptime_1h, f.uptime_24h, f.uptime_7d,
               f.avg_response_time_1h, f.avg_response_time_24h, f.avg_response_time_7d,
               f.pings_1h, f.pings_24h, f.pings_7d, f.current_status, f.last_checked
          FROM fresh AS f
        ON CONFLICT (site_id) DO UPDATE SET
            uptime_1h = EXCLUDED.uptime_1h, uptime_24h = EXCLUDED.uptime_24h,
            uptime_7d = EXCLUDED.uptime_7d,
            avg_response_time_1h = EXCLUDED.avg_response_time_1h,
            avg_response_time_24h = EXCLUDED.avg_response_time_24h,
            avg_response_time_7d = EXCLUDED.avg_response_time_7d,
            pings_1h = EXCLUDED.pings_1h, pings_24h = EXCLUDED.pings_24h,
            pings_7d = EXCLUDED.pings_7d,
            current_status = EXCLUDED.current_status, last_checked = EXCLUDED.last_checked,
            updated_at = now()
        RETURNING 1
    )
    SELECT count(*)::integer INTO written FROM upserted;
    RETURN written;
END;
$$;
