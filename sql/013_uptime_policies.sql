-- uptimelab schema, version 13: uptime that counts honestly (policies, coverage, maintenance)
-- and long windows (rollups that carry every policy, a daily rollup kept for ever).
-- Never edit an applied file: add a new numbered file instead.
--
-- The definitions. For a site s, a location l, the pings of (s, l) in time order form its
-- series; every stored ping of the series is read, also those after the refresh time T (what is
-- known now; at T = now() there are none).
--   D(s)        sites.down_after (sql/011)
--   I(s)        sites.interval_ms, else uptime_settings.default_interval_ms
--               (MONITORING_INTERVAL_MS)
--   G(s)        I(s) + (sites.timeout_ms, else uptime_settings.default_timeout_ms): the longest
--               gap a ping answers for
--   run         a maximal stretch of consecutive down pings of one series
--   confirmed   a down ping whose run has at least D(s) pings (it became an incident)
--   span        of a ping: the time to the next ping of its series, at most G(s); G(s) when no
--               next ping is stored yet. Beyond G(s) time is unknown: no one was looking.
-- A window W at T holds the pings with checked_at in (T - W, T], all locations together; with
-- exclude_maintenance, those inside a maintenance window of the site (or of all sites) are left
-- out of every count but coverage (runs and spans still see them: they are pings).
--   samples     uptime = 100 * up / pings (the seed's definition)
--   confirmed   uptime = 100 * (pings - confirmed down) / pings: a down ping that never became
--               an incident counts as up
--   time        uptime = 100 * up span / (up span + down span), spans in microseconds
--   (0 where the denominator is 0; float8, then REAL, as in sql/003)
--   avg_response_time  mean response_time_ms of the up pings, under every policy
--   coverage    100 * pings received * I(s) / W, at most 100 (pooled: the locations together;
--               a site is covered while any location looks at it once an interval)
-- uptimelab.analytics.windows.window_stats(policy=...) computes the same numbers.

-- What site_stats stores, and the defaults the SQL reads for sites without their own interval
-- or timeout; written by refresh_stats from the settings (UPTIME_POLICY,
-- UPTIME_EXCLUDE_MAINTENANCE, MONITORING_INTERVAL_MS, PING_TIMEOUT_MS).
CREATE TABLE IF NOT EXISTS uptime_settings (
    only_row            boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    policy              text    NOT NULL DEFAULT 'samples'
                                CHECK (policy IN ('samples', 'confirmed', 'time')),
    exclude_maintenance boolean NOT NULL DEFAULT false,
    default_interval_ms integer NOT NULL DEFAULT 300000
                                CHECK (default_interval_ms BETWEEN 1000 AND 86400000),
    default_timeout_ms  integer NOT NULL DEFAULT 10000
                                CHECK (default_timeout_ms BETWEEN 1 AND 86400000)
);
INSERT INTO uptime_settings DEFAULT VALUES ON CONFLICT DO NOTHING;

ALTER TABLE site_stats
    ADD COLUMN IF NOT EXISTS coverage_1h           real    NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS coverage_24h          real    NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS coverage_7d           real    NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS uptime_30d            real    NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS avg_response_time_30d integer NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS pings_30d             integer NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS policy                text    NOT NULL DEFAULT 'samples',
    ADD COLUMN IF NOT EXISTS maintenance_excluded  boolean NOT NULL DEFAULT false;

-- Recurring maintenance windows, expanded: one row per opening, written ahead by
-- uptimelab.storage.windows.expand_maintenance (croniter) up to maintenance_expanded.
CREATE TABLE IF NOT EXISTS maintenance_occurrences (
    maintenance_id bigint      NOT NULL REFERENCES maintenance (id) ON DELETE CASCADE,
    starts_at      timestamptz NOT NULL,
    ends_at        timestamptz NOT NULL,
    PRIMARY KEY (maintenance_id, starts_at),
    CHECK (ends_at > starts_at)
);
CREATE INDEX IF NOT EXISTS maintenance_occurrences_time_idx
    ON maintenance_occurrences (starts_at, ends_at);
CREATE TABLE IF NOT EXISTS maintenance_expanded (
    maintenance_id bigint      PRIMARY KEY REFERENCES maintenance (id) ON DELETE CASCADE,
    expanded_until timestamptz NOT NULL
);

-- Every maintenance window [starts_at, ends_at) that overlaps [lo, hi); site_id NULL: all sites.
CREATE OR REPLACE FUNCTION uptimelab_maintenance_windows(lo timestamptz, hi timestamptz)
RETURNS TABLE (site_id uuid, starts_at timestamptz, ends_at timestamptz)
LANGUAGE sql STABLE
SET jit = off AS $$
    SELECT m.site_id, m.starts_at, m.ends_at FROM maintenance AS m
     WHERE m.cron IS NULL AND m.starts_at < hi AND m.ends_at > lo
    UNION ALL
    SELECT m.site_id, o.starts_at, o.ends_at
      FROM maintenance_occurrences AS o JOIN maintenance AS m ON m.id = o.maintenance_id
     WHERE o.starts_at < hi AND o.ends_at > lo
$$;

-- The first instant whose raw pings are still stored: the day after the last pruned day
-- (sql/014), or -infinity. Dynamic, so that this file does not depend on 014's table.
CREATE OR REPLACE FUNCTION uptimelab_raw_from() RETURNS timestamptz
LANGUAGE plpgsql STABLE
SET jit = off AS $$
DECLARE
    found timestamptz;
BEGIN
    IF to_regclass('pings_pruned_days') IS NULL THEN
        RETURN '-infinity';
    END IF;
    EXECUTE 'SELECT ((max(day) + 1)::timestamp AT TIME ZONE ''UTC'') FROM pings_pruned_days'
       INTO found;
    RETURN coalesce(found, '-infinity');
END;
$$;

-- Each ping in the ranges (site NULL: every site; checked_at in (lo, hi]) with what every policy
-- needs: confirmed (its run has D(s) pings or more) and span_us (see above), and whether it
-- falls in a maintenance window. Runs and next pings are read from the series around each
-- range: D(s) pings before and after it are enough (a run that reaches that far is confirmed
-- whatever lies beyond), so a range costs its own pings plus an index probe per series.
CREATE OR REPLACE FUNCTION uptimelab_ping_values(
    range_sites uuid[], range_lo timestamptz[], range_hi timestamptz[]
) RETURNS TABLE (
    site_id uuid, location text, checked_at timestamptz, up boolean, response_time_ms integer,
    confirmed boolean, span_us bigint, in_maintenance boolean
)
LANGUAGE sql STABLE
SET jit = off AS $$
    WITH ranges AS (
        SELECT * FROM unnest(range_sites, range_lo, range_hi) AS q (site_id, lo, hi)
    ),
    site AS (
        SELECT s.id, s.down_after,
               1000 * (coalesce(s.interval_ms, u.default_interval_ms)::bigint
                       + coalesce(s.timeout_ms, u.default_timeout_ms)) AS gap_us
          FROM sites AS s CROSS JOIN uptime_settings AS u
    ),
    -- A range of every site is a scan by time, a range of one site an index scan of its own.
    core AS (
        SELECT p.site_id, p.location, p.checked_at, p.status, p.response_time_ms, q.lo, q.hi
          FROM ranges AS q
          JOIN pings AS p ON p.checked_at > q.lo AND p.checked_at <= q.hi
         WHERE q.site_id IS NULL
        UNION ALL
        SELECT p.site_id, p.location, p.checked_at, p.status, p.response_time_ms, q.lo, q.hi
          FROM ranges AS q
          JOIN pings AS p ON p.site_id = q.site_id
                         AND p.checked_at > q.lo AND p.checked_at <= q.hi
         WHERE q.site_id IS NOT NULL
    ),
    edges AS (
        SELECT DISTINCT c.site_id, c.location, c.lo, c.hi FROM core AS c
    ),
    context AS (
        SELECT e.site_id, e.location, b.checked_at, b.status, b.response_time_ms
          FROM edges AS e JOIN site AS s ON s.id = e.site_id
         CROSS JOIN LATERAL (
               SELECT p.checked_at, p.status, p.response_time_ms FROM pings AS p
                WHERE p.site_id = e.site_id AND p.location = e.location AND p.checked_at <= e.lo
                ORDER BY p.checked_at DESC LIMIT s.down_after) AS b
        UNION
        SELECT e.site_id, e.location, f.checked_at, f.status, f.response_time_ms
          FROM edges AS e JOIN site AS s ON s.id = e.site_id
         CROSS JOIN LATERAL (
               SELECT p.checked_at, p.status, p.response_time_ms FROM pings AS p
                WHERE p.site_id = e.site_id AND p.location = e.location AND p.checked_at > e.hi
                ORDER BY p.checked_at LIMIT s.down_after) AS f
    ),
    seq AS (
        SELECT k.site_id, k.location, k.checked_at, k.status, k.response_time_ms,
               bool_or(k.inside) AS inside
          FROM (SELECT c.site_id, c.location, c.checked_at, c.status, c.response_time_ms,
                       true AS inside
                  FROM core AS c
                UNION ALL
                SELECT x.*, false FROM context AS x) AS k
         GROUP BY k.site_id, k.location, k.checked_at, k.status, k.response_time_ms
    ),
    ordered AS (
        SELECT q.site_id, q.location, q.checked_at, q.inside, q.status = 'up' AS up,
               q.response_time_ms,
               lead(q.checked_at) OVER w AS next_at,
               count(*) FILTER (WHERE q.status = 'up') OVER (w ROWS UNBOUNDED PRECEDING) AS run
          FROM seq AS q
        WINDOW w AS (PARTITION BY q.site_id, q.location ORDER BY q.checked_at)
    ),
    runs AS (
        SELECT o.*,
               count(*) FILTER (WHERE NOT o.up)
                   OVER (PARTITION BY o.site_id, o.location, o.run) AS run_down
          FROM ordered AS o
    ),
    maint AS (
        SELECT w.site_id, w.starts_at, w.ends_at
          FROM uptimelab_maintenance_windows(
                   (SELECT min(lo) FROM ranges), 'infinity') AS w
    )
    SELECT r.site_id, r.location, r.checked_at, r.up, r.response_time_ms,
           NOT r.up AND r.run_down >= s.down_after,
           CASE WHEN r.next_at IS NULL THEN s.gap_us
                ELSE least(s.gap_us, ((extract(epoch FROM r.next_at)
                                       - extract(epoch FROM r.checked_at)) * 1000000)::bigint)
           END,
           -- The per-ping look-up only where there is a window at all.
           CASE WHEN NOT EXISTS (SELECT 1 FROM maint) THEN false
                ELSE EXISTS (SELECT 1 FROM maint AS m
                              WHERE (m.site_id IS NULL OR m.site_id = r.site_id)
                                AND r.checked_at >= m.starts_at AND r.checked_at < m.ends_at)
           END
      FROM runs AS r JOIN site AS s ON s.id = r.site_id
     WHERE r.inside
$$;

-- The uptime of a window under a policy, from its sums (see the definitions above).
CREATE OR REPLACE FUNCTION uptimelab_uptime(
    policy text, n numeric, u numeric, cd numeric, up_us numeric, down_us numeric
) RETURNS real
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE policy
        WHEN 'samples' THEN coalesce((100 * u)::float8 / nullif(n, 0), 0)
        WHEN 'confirmed' THEN coalesce((100 * (n - cd))::float8 / nullif(n, 0), 0)
        WHEN 'time' THEN coalesce((100 * up_us)::float8 / nullif(up_us + down_us, 0), 0)
    END::real
$$;

CREATE OR REPLACE FUNCTION uptimelab_coverage(received numeric, interval_ms integer, width interval)
RETURNS real
LANGUAGE sql IMMUTABLE AS $$
    SELECT least(100, (100 * received * interval_ms)::float8
                      / (extract(epoch FROM width) * 1000)::float8)::real
$$;

-- The definition of truth for one window (T - width, T], from raw pings only. One row per site
-- with a ping received in the window. policy and exclude_maintenance NULL: uptime_settings'.
CREATE OR REPLACE FUNCTION uptimelab_window_reference(
    t timestamptz, width interval, policy text DEFAULT NULL,
    exclude_maintenance boolean DEFAULT NULL, only_sites uuid[] DEFAULT NULL
) RETURNS TABLE (
    site_id uuid, uptime real, avg_response_time integer, pings integer, coverage real
)
LANGUAGE sql STABLE
SET jit = off AS $$
    WITH conf AS (
        SELECT coalesce(uptimelab_window_reference.policy, u.policy) AS pol,
               coalesce(uptimelab_window_reference.exclude_maintenance, u.exclude_maintenance)
                   AS excl,
               u.default_interval_ms
          FROM uptime_settings AS u
    ),
    v AS (
        SELECT x.*, NOT (x.in_maintenance AND conf.excl) AS counted
          FROM conf, uptimelab_ping_values(
                   CASE WHEN only_sites IS NULL THEN ARRAY[NULL::uuid] ELSE only_sites END,
                   array_fill(t - width, ARRAY[greatest(cardinality(only_sites), 1)]),
                   array_fill(t, ARRAY[greatest(cardinality(only_sites), 1)])) AS x
    ),
    summed AS (
        SELECT v.site_id,
               count(*) AS received,
               count(*) FILTER (WHERE counted) AS n,
               count(*) FILTER (WHERE counted AND up) AS u,
               count(*) FILTER (WHERE counted AND confirmed) AS cd,
               coalesce(sum(span_us) FILTER (WHERE counted AND up), 0) AS up_us,
               coalesce(sum(span_us) FILTER (WHERE counted AND NOT up), 0) AS down_us,
               sum(v.response_time_ms) FILTER (WHERE counted AND up) AS s,
               count(v.response_time_ms) FILTER (WHERE counted AND up) AS c
          FROM v GROUP BY v.site_id
    )
    SELECT m.site_id,
           uptimelab_uptime(conf.pol, m.n, m.u, m.cd, m.up_us, m.down_us),
           coalesce(div(2 * m.s + m.c, nullif(2 * m.c, 0)), 0)::integer,
           m.n::integer,
           uptimelab_coverage(m.received, coalesce(st.interval_ms, conf.default_interval_ms), width)
      FROM summed AS m CROSS JOIN conf JOIN sites AS st ON st.id = m.site_id
$$;

-- ----------------------------------------------------------------------------------------
-- Rollups that carry every policy.
--
-- ping_rollup_hourly gains, per site and hour, the confirmed down pings and the up and down
-- spans of its pings (a ping's whole span belongs to the hour of the ping). These depend on
-- neighbouring pings, possibly in later hours and days. A row whose values are not known to be
-- final is listed in ping_rollup_dirty, and the stats read its raw pings instead: the rows of
-- new hours (the advance marks them; the advance holds the lock writers wait on, so it does no
-- more), the rows around a ping written, changed or deleted below the watermark (a replay, an
-- import; a trigger marks them), and, after a settle, the rows holding a ping of an open run
-- shorter than D(s) or a latest ping less than G(s) old. uptimelab_settle_rollup computes dirty
-- rows from the series around each hour (uptimelab_ping_values reads across hour and day
-- boundaries) without that lock: a bounded share at each stats refresh, all of them in
-- ul.refresh_stats. pings, pings_up and the response-time sums stay as sql/003 keeps them
-- (always exact).
ALTER TABLE ping_rollup_hourly
    ADD COLUMN IF NOT EXISTS pings_down_confirmed integer NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS up_us                bigint  NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS down_us              bigint  NOT NULL DEFAULT 0;

-- Every site's hours in a range (the edges of a long window, the refresh's 30 days).
CREATE INDEX IF NOT EXISTS ping_rollup_hourly_hour_idx ON ping_rollup_hourly (hour);

-- seq tells a row marked again while it was being settled from one marked before.
CREATE SEQUENCE IF NOT EXISTS ping_rollup_dirty_seq;
CREATE TABLE IF NOT EXISTS ping_rollup_dirty (
    site_id uuid        NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    hour    timestamptz NOT NULL,
    seq     bigint      NOT NULL DEFAULT nextval('ping_rollup_dirty_seq'),
    PRIMARY KEY (site_id, hour)
);
CREATE INDEX IF NOT EXISTS ping_rollup_dirty_hour_idx ON ping_rollup_dirty (hour);

-- Per site and UTC day (day = its first instant): the sums of its hourly rows, kept for ever
-- (pruning drops raw pings, never rollups). A day's row is written by the advance that rolls up
-- one of its hours or recomputes a dirty one; a day with a dirty hour is read by the hour.
CREATE TABLE IF NOT EXISTS ping_rollup_daily (
    site_id              uuid        NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    day                  timestamptz NOT NULL,
    pings                bigint      NOT NULL,
    pings_up             bigint      NOT NULL,
    up_response_ms_sum   bigint      NOT NULL,
    up_response_count    bigint      NOT NULL,
    pings_down_confirmed bigint      NOT NULL,
    up_us                bigint      NOT NULL,
    down_us              bigint      NOT NULL,
    PRIMARY KEY (site_id, day)
);
CREATE INDEX IF NOT EXISTS ping_rollup_daily_day_idx ON ping_rollup_daily (day);

-- The policy columns of the rows of the hours [lo, hi) of some sites (NULL: all), from raw
-- pings; hours before raw pings begin (pruned) are left as they are.
CREATE OR REPLACE FUNCTION uptimelab_rollup_policy_hours(
    lo timestamptz, hi timestamptz, only_sites uuid[] DEFAULT NULL
) RETURNS void
LANGUAGE sql
SET jit = off AS $$
    WITH v AS (
        SELECT x.site_id, date_trunc('hour', x.checked_at, 'UTC') AS hour,
               count(*) FILTER (WHERE x.confirmed) AS cd,
               coalesce(sum(x.span_us) FILTER (WHERE x.up), 0) AS uu,
               coalesce(sum(x.span_us) FILTER (WHERE NOT x.up), 0) AS du
          FROM uptimelab_ping_values(
                   CASE WHEN only_sites IS NULL THEN ARRAY[NULL::uuid] ELSE only_sites END,
                   array_fill(greatest(lo, uptimelab_raw_from()) - interval '1 microsecond',
                              ARRAY[greatest(cardinality(only_sites), 1)]),
                   array_fill(hi - interval '1 microsecond',
                              ARRAY[greatest(cardinality(only_sites), 1)])) AS x
         GROUP BY 1, 2
    )
    UPDATE ping_rollup_hourly AS r
       SET pings_down_confirmed = coalesce(v.cd, 0), up_us = coalesce(v.uu, 0),
           down_us = coalesce(v.du, 0)
      FROM ping_rollup_hourly AS k LEFT JOIN v ON v.site_id = k.site_id AND v.hour = k.hour
     WHERE r.site_id = k.site_id AND r.hour = k.hour
       AND k.hour >= greatest(lo, uptimelab_raw_from()) AND k.hour < hi
       AND (only_sites IS NULL OR k.site_id = ANY (only_sites))
$$;

-- The (site, hour) rows before ``target`` whose policy values may still change, of the given
-- series (site, location): the pings of an open run shorter than D(s) (no up ping after it
-- yet), and the latest ping while its G(s) has not passed by ``target``.
CREATE OR REPLACE FUNCTION uptimelab_rollup_unsettled(
    target timestamptz, series_sites uuid[], series_locations text[]
) RETURNS TABLE (site_id uuid, hour timestamptz)
LANGUAGE sql STABLE
SET jit = off AS $$
    WITH series AS (
        SELECT q.site_id, q.location, s.down_after,
               1000 * (coalesce(s.interval_ms, u.default_interval_ms)::bigint
                       + coalesce(s.timeout_ms, u.default_timeout_ms)) AS gap_us
          FROM unnest(series_sites, series_locations) AS q (site_id, location)
          JOIN sites AS s ON s.id = q.site_id CROSS JOIN uptime_settings AS u
    ),
    latest AS (
        SELECT x.site_id, z.checked_at, z.k, z.up_seen,
               count(*) FILTER (WHERE NOT z.up_seen)
                   OVER (PARTITION BY x.site_id, x.location) AS trailing,
               x.down_after, x.gap_us
          FROM series AS x
         CROSS JOIN LATERAL (
               SELECT y.checked_at, row_number() OVER (ORDER BY y.checked_at DESC) AS k,
                      bool_or(y.up) OVER (ORDER BY y.checked_at DESC
                                          ROWS UNBOUNDED PRECEDING) AS up_seen
                 FROM (SELECT p.checked_at, p.status = 'up' AS up FROM pings AS p
                        WHERE p.site_id = x.site_id AND p.location = x.location
                        ORDER BY p.checked_at DESC LIMIT x.down_after) AS y) AS z
    )
    SELECT DISTINCT l.site_id, date_trunc('hour', l.checked_at, 'UTC')
      FROM latest AS l
     WHERE l.checked_at < target
       AND ((NOT l.up_seen AND l.trailing < l.down_after)
            OR (l.k = 1 AND l.checked_at + l.gap_us * interval '1 microsecond' > target))
$$;

-- Advance the rollup (sql/003); the new rows are dirty until settled, their days' daily rows
-- are written. Returns the watermark.
CREATE OR REPLACE FUNCTION uptimelab_advance_rollup(upto timestamptz DEFAULT now())
RETURNS timestamptz
LANGUAGE plpgsql
SET jit = off AS $$
DECLARE
    mark    timestamptz;
    target  timestamptz := date_trunc('hour', least(upto, now()), 'UTC');
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

    -- The new hours' policy columns are settled later (uptimelab_settle_rollup), outside this
    -- lock that writers wait on: until then their rows are dirty, and read raw.
    INSERT INTO ping_rollup_dirty (site_id, hour)
    SELECT r.site_id, r.hour FROM ping_rollup_hourly AS r
     WHERE r.hour >= mark AND r.hour < target
    ON CONFLICT (site_id, hour) DO UPDATE SET seq = EXCLUDED.seq;
    -- The daily rows of the new hours' days (the sums; the policy columns follow the settle).
    INSERT INTO ping_rollup_daily AS y
    SELECT r.site_id, date_trunc('day', r.hour, 'UTC'), sum(r.pings), sum(r.pings_up),
           sum(r.up_response_ms_sum), sum(r.up_response_count), sum(r.pings_down_confirmed),
           sum(r.up_us), sum(r.down_us)
      FROM ping_rollup_hourly AS r
     WHERE r.hour >= date_trunc('day', mark, 'UTC') AND r.hour < target
     GROUP BY 1, 2
    ON CONFLICT (site_id, day) DO UPDATE SET
        pings = EXCLUDED.pings, pings_up = EXCLUDED.pings_up,
        up_response_ms_sum = EXCLUDED.up_response_ms_sum,
        up_response_count = EXCLUDED.up_response_count,
        pings_down_confirmed = EXCLUDED.pings_down_confirmed,
        up_us = EXCLUDED.up_us, down_us = EXCLUDED.down_us;
    RETURN target;
END;
$$;

-- Settle up to ``max_rows`` dirty rows below the watermark (NULL: all), oldest first: their
-- policy columns from raw pings (uptimelab_ping_values reads the series around each hour),
-- then the rows whose values may still change marked dirty again (uptimelab_rollup_unsettled),
-- then their days' daily rows. It holds no lock that writers wait on; a row marked again while
-- it was being settled (a late ping) stays dirty. One settle at a time (the others return 0).
-- Returns the rows settled.
CREATE OR REPLACE FUNCTION uptimelab_settle_rollup(max_rows integer DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql
SET jit = off AS $$
DECLARE
    mark        timestamptz;
    d_sites     uuid[];
    d_hours     timestamptz[];
    d_seqs      bigint[];
    s_sites     uuid[];
    s_locations text[];
    one         record;
BEGIN
    IF NOT pg_try_advisory_xact_lock(uptimelab_rollup_lock_key() + 1) THEN
        RETURN 0;
    END IF;
    SELECT watermark INTO mark FROM ping_rollup_state;
    SELECT array_agg(d.site_id), array_agg(d.hour), array_agg(d.seq)
      INTO d_sites, d_hours, d_seqs
      FROM (SELECT * FROM ping_rollup_dirty AS x WHERE x.hour < mark
             ORDER BY x.hour, x.site_id LIMIT max_rows) AS d;
    IF d_sites IS NULL THEN
        RETURN 0;
    END IF;
    FOR one IN
        SELECT q.hour, array_agg(q.site_id) AS sites
          FROM unnest(d_sites, d_hours) AS q (site_id, hour) GROUP BY q.hour
    LOOP
        PERFORM uptimelab_rollup_policy_hours(one.hour, one.hour + interval '1 hour', one.sites);
    END LOOP;
    DELETE FROM ping_rollup_dirty AS d
     USING unnest(d_sites, d_hours, d_seqs) AS q (site_id, hour, seq)
     WHERE d.site_id = q.site_id AND d.hour = q.hour AND d.seq = q.seq;

    -- The series with a ping in the settled rows: only they can hold a value that may still
    -- change (any other was settled before).
    SELECT array_agg(z.site_id), array_agg(z.location) INTO s_sites, s_locations
      FROM (SELECT DISTINCT p.site_id, p.location
              FROM unnest(d_sites, d_hours) AS q (site_id, hour)
              JOIN pings AS p ON p.site_id = q.site_id AND p.checked_at >= q.hour
                             AND p.checked_at < q.hour + interval '1 hour') AS z;
    INSERT INTO ping_rollup_dirty (site_id, hour)
    SELECT u.site_id, u.hour FROM uptimelab_rollup_unsettled(mark, s_sites, s_locations) AS u
      JOIN ping_rollup_hourly AS r ON r.site_id = u.site_id AND r.hour = u.hour
    ON CONFLICT DO NOTHING;

    INSERT INTO ping_rollup_daily AS y
    SELECT r.site_id, date_trunc('day', r.hour, 'UTC'), sum(r.pings), sum(r.pings_up),
           sum(r.up_response_ms_sum), sum(r.up_response_count), sum(r.pings_down_confirmed),
           sum(r.up_us), sum(r.down_us)
      FROM (SELECT DISTINCT q.site_id, date_trunc('day', q.hour, 'UTC') AS day
              FROM unnest(d_sites, d_hours) AS q (site_id, hour)) AS t
      JOIN ping_rollup_hourly AS r
        ON r.site_id = t.site_id AND r.hour >= t.day AND r.hour < t.day + interval '24 hours'
     GROUP BY 1, 2
    ON CONFLICT (site_id, day) DO UPDATE SET
        pings = EXCLUDED.pings, pings_up = EXCLUDED.pings_up,
        up_response_ms_sum = EXCLUDED.up_response_ms_sum,
        up_response_count = EXCLUDED.up_response_count,
        pings_down_confirmed = EXCLUDED.pings_down_confirmed,
        up_us = EXCLUDED.up_us, down_us = EXCLUDED.down_us;
    RETURN cardinality(d_sites);
END;
$$;

-- A ping written, changed or deleted below the watermark changes the runs and spans around it:
-- the rows from D(s) pings before it to D(s) pings after it become dirty. Named to fire after
-- sql/003's triggers (same event: alphabetical order), so that a late hour's row exists.
CREATE OR REPLACE FUNCTION uptimelab_rollup_mark_dirty() RETURNS trigger
LANGUAGE plpgsql
SET jit = off AS $$
DECLARE
    mark timestamptz;
BEGIN
    PERFORM pg_advisory_xact_lock_shared(uptimelab_rollup_lock_key());
    SELECT watermark INTO mark FROM ping_rollup_state;
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        INSERT INTO ping_rollup_dirty (site_id, hour)
        SELECT DISTINCT r.site_id, r.hour
          FROM (SELECT o.site_id, o.location, min(o.checked_at) AS lo, max(o.checked_at) AS hi
                  FROM old_rows AS o WHERE o.checked_at < mark GROUP BY 1, 2) AS c
          JOIN sites AS s ON s.id = c.site_id
         CROSS JOIN LATERAL (
               SELECT coalesce(min(b.checked_at), c.lo) AS h0 FROM (
                      SELECT p.checked_at FROM pings AS p
                       WHERE p.site_id = c.site_id AND p.location = c.location
                         AND p.checked_at < c.lo
                       ORDER BY p.checked_at DESC LIMIT s.down_after) AS b) AS x
         CROSS JOIN LATERAL (
               SELECT coalesce(max(f.checked_at), c.hi) AS h1 FROM (
                      SELECT p.checked_at FROM pings AS p
                       WHERE p.site_id = c.site_id AND p.location = c.location
                         AND p.checked_at > c.hi
                       ORDER BY p.checked_at LIMIT s.down_after) AS f) AS y
          JOIN ping_rollup_hourly AS r
            ON r.site_id = c.site_id AND r.hour >= date_trunc('hour', x.h0, 'UTC')
           AND r.hour <= date_trunc('hour', y.h1, 'UTC') AND r.hour < mark
        ON CONFLICT (site_id, hour) DO UPDATE SET seq = EXCLUDED.seq;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        IF EXISTS (SELECT 1 FROM new_rows WHERE checked_at < mark) THEN
            INSERT INTO ping_rollup_dirty (site_id, hour)
            SELECT DISTINCT r.site_id, r.hour
              FROM (SELECT n.site_id, n.location, min(n.checked_at) AS lo,
                           max(n.checked_at) AS hi
                      FROM new_rows AS n WHERE n.checked_at < mark GROUP BY 1, 2) AS c
              JOIN sites AS s ON s.id = c.site_id
             CROSS JOIN LATERAL (
                   SELECT coalesce(min(b.checked_at), c.lo) AS h0 FROM (
                          SELECT p.checked_at FROM pings AS p
                           WHERE p.site_id = c.site_id AND p.location = c.location
                             AND p.checked_at < c.lo
                           ORDER BY p.checked_at DESC LIMIT s.down_after) AS b) AS x
             CROSS JOIN LATERAL (
                   SELECT coalesce(max(f.checked_at), c.hi) AS h1 FROM (
                          SELECT p.checked_at FROM pings AS p
                           WHERE p.site_id = c.site_id AND p.location = c.location
                             AND p.checked_at > c.hi
                           ORDER BY p.checked_at LIMIT s.down_after) AS f) AS y
              JOIN ping_rollup_hourly AS r
                ON r.site_id = c.site_id AND r.hour >= date_trunc('hour', x.h0, 'UTC')
               AND r.hour <= date_trunc('hour', y.h1, 'UTC') AND r.hour < mark
            ON CONFLICT (site_id, hour) DO UPDATE SET seq = EXCLUDED.seq;
        END IF;
    END IF;
    RETURN NULL;
END;
$$;

-- TRUNCATE pings starts the rollups again (sql/003 empties the hourly one).
CREATE OR REPLACE FUNCTION uptimelab_rollup_policy_truncated() RETURNS trigger
LANGUAGE plpgsql
SET jit = off AS $$
BEGIN
    DELETE FROM ping_rollup_dirty;
    DELETE FROM ping_rollup_daily;
    RETURN NULL;
END;
$$;

DROP TRIGGER IF EXISTS pings_rollup_policy_insert ON pings;
CREATE TRIGGER pings_rollup_policy_insert AFTER INSERT ON pings
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION uptimelab_rollup_mark_dirty();
DROP TRIGGER IF EXISTS pings_rollup_policy_update ON pings;
CREATE TRIGGER pings_rollup_policy_update AFTER UPDATE ON pings
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION uptimelab_rollup_mark_dirty();
DROP TRIGGER IF EXISTS pings_rollup_policy_delete ON pings;
CREATE TRIGGER pings_rollup_policy_delete AFTER DELETE ON pings
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION uptimelab_rollup_mark_dirty();
DROP TRIGGER IF EXISTS pings_rollup_policy_truncate ON pings;
CREATE TRIGGER pings_rollup_policy_truncate AFTER TRUNCATE ON pings
    FOR EACH STATEMENT EXECUTE FUNCTION uptimelab_rollup_policy_truncated();

-- The rollup's hours so far: dirty until settled (by the refreshes, or ul.refresh_stats at
-- once), their days written now.
INSERT INTO ping_rollup_dirty (site_id, hour)
SELECT r.site_id, r.hour FROM ping_rollup_hourly AS r ON CONFLICT DO NOTHING;
INSERT INTO ping_rollup_daily
SELECT r.site_id, date_trunc('day', r.hour, 'UTC'), sum(r.pings), sum(r.pings_up),
       sum(r.up_response_ms_sum), sum(r.up_response_count), sum(r.pings_down_confirmed),
       sum(r.up_us), sum(r.down_us)
  FROM ping_rollup_hourly AS r GROUP BY 1, 2
ON CONFLICT DO NOTHING;

-- ----------------------------------------------------------------------------------------
-- Any window, fast: whole days from the daily rollup, whole hours from the hourly one, raw pings
-- for the rest. For (lo, t] with lo = t - width: a = the first hour boundary after lo, c = the
-- hour of t or the watermark where the rollup stops short of it. Hours [a, c) come from the
-- rollups (days whole inside [a, c) from the daily one, unless one of their hours is special),
-- (lo, a) and [c, t] from raw pings. Special hours are read raw as well: dirty rows, and under
-- exclude_maintenance the hours a maintenance window touches. Where raw pings are pruned
-- (before uptimelab_raw_from()), the edge (lo, a) is left out and the window counts from a
-- (whole hours; from_rollups says so), a dirty hour is taken from its row as it is, and an
-- hour a maintenance window touches is left out whole.
-- Returns one row per site with a ping received in what was read.
CREATE OR REPLACE FUNCTION uptimelab_window_at(
    t timestamptz, width interval, policy text DEFAULT NULL,
    exclude_maintenance boolean DEFAULT NULL, only_sites uuid[] DEFAULT NULL
) RETURNS TABLE (
    site_id uuid, uptime real, avg_response_time integer, pings integer, coverage real,
    from_rollups boolean, counted_from timestamptz
)
LANGUAGE plpgsql STABLE
SET jit = off AS $$
DECLARE
    lo       timestamptz := t - width;
    a        timestamptz := date_trunc('hour', t - width, 'UTC') + interval '1 hour';
    c        timestamptz;
    d0       timestamptz;
    d1       timestamptz;
    raw_from timestamptz := uptimelab_raw_from();
    mark     timestamptz;
    pol      text;
    excl     boolean;
    interval_default integer;
    cut      boolean;
BEGIN
    IF width < interval '1 hour' THEN
        RAISE EXCEPTION 'window % is shorter than an hour', width USING ERRCODE = '22023';
    END IF;
    SELECT coalesce(uptimelab_window_at.policy, u.policy),
           coalesce(uptimelab_window_at.exclude_maintenance, u.exclude_maintenance),
           u.default_interval_ms
      INTO pol, excl, interval_default FROM uptime_settings AS u;
    IF pol NOT IN ('samples', 'confirmed', 'time') THEN
        RAISE EXCEPTION 'policy % is not samples, confirmed or time', pol USING ERRCODE = '22023';
    END IF;
    SELECT watermark INTO mark FROM ping_rollup_state;
    c := greatest(a, least(date_trunc('hour', t, 'UTC'), mark));
    d0 := date_trunc('day', a, 'UTC');
    IF d0 < a THEN
        d0 := d0 + interval '24 hours';
    END IF;
    d1 := greatest(d0, date_trunc('day', c, 'UTC'));
    -- The edge (lo, a) holds instants, and its raw pings are gone.
    cut := lo < raw_from AND a - lo > interval '1 microsecond';
    RETURN QUERY
    WITH chosen (id) AS (SELECT DISTINCT unnest(only_sites)),
    maint AS (
        SELECT w.site_id, w.starts_at, w.ends_at
          FROM uptimelab_maintenance_windows(lo, t + interval '1 microsecond') AS w
         WHERE excl
    ),
    special AS (
        SELECT d.site_id, d.hour, false AS in_maintenance FROM ping_rollup_dirty AS d
         WHERE d.hour >= a AND d.hour < c
           AND (only_sites IS NULL OR d.site_id IN (SELECT chosen.id FROM chosen))
        UNION ALL
        SELECT r.site_id, r.hour, true
          FROM maint AS m
         CROSS JOIN LATERAL generate_series(
                   date_trunc('hour', greatest(m.starts_at, a), 'UTC'),
                   least(m.ends_at, c) - interval '1 microsecond', interval '1 hour') AS g (hour)
          JOIN ping_rollup_hourly AS r
            ON r.hour = g.hour AND (m.site_id IS NULL OR m.site_id = r.site_id)
         WHERE (only_sites IS NULL OR r.site_id IN (SELECT chosen.id FROM chosen))
    ),
    special_hours AS (
        -- Under samples without exclusion a dirty row's own columns are exact (sql/003 keeps
        -- them): only its day is read by the hour.
        SELECT s.site_id, s.hour, bool_or(s.in_maintenance) AS in_maintenance,
               pol <> 'samples' OR excl AS read_raw
          FROM special AS s GROUP BY s.site_id, s.hour
    ),
    special_days AS (
        SELECT DISTINCT s.site_id, date_trunc('day', s.hour, 'UTC') AS day FROM special AS s
    ),
    raw_ranges AS (
        SELECT NULL::uuid AS site_id, lo AS r_lo, a - interval '1 microsecond' AS r_hi
         WHERE NOT cut AND a - lo > interval '1 microsecond' AND only_sites IS NULL
        UNION ALL
        SELECT chosen.id, lo, a - interval '1 microsecond' FROM chosen
         WHERE NOT cut AND a - lo > interval '1 microsecond'
        UNION ALL
        SELECT NULL::uuid, c - interval '1 microsecond', t WHERE only_sites IS NULL AND c <= t
        UNION ALL
        SELECT chosen.id, c - interval '1 microsecond', t FROM chosen WHERE c <= t
        UNION ALL
        SELECT h.site_id, h.hour - interval '1 microsecond',
               h.hour + interval '1 hour' - interval '1 microsecond'
          FROM special_hours AS h WHERE h.hour >= raw_from AND h.read_raw
    ),
    raw AS (
        SELECT v.*, NOT (excl AND v.in_maintenance) AS counted
          FROM uptimelab_ping_values(
                   (SELECT array_agg(q.site_id) FROM raw_ranges AS q),
                   (SELECT array_agg(q.r_lo) FROM raw_ranges AS q),
                   (SELECT array_agg(q.r_hi) FROM raw_ranges AS q)) AS v
    ),
    parts AS (
        SELECT y.site_id, y.pings AS received, y.pings AS n, y.pings_up AS u,
               y.pings_down_confirmed AS cd, y.up_us::numeric AS up_us,
               y.down_us::numeric AS down_us, y.up_response_ms_sum::numeric AS s,
               y.up_response_count AS k
          FROM ping_rollup_daily AS y
         WHERE y.day >= d0 AND y.day < d1
           AND (only_sites IS NULL OR y.site_id IN (SELECT chosen.id FROM chosen))
           AND NOT EXISTS (SELECT 1 FROM special_days AS sd
                            WHERE sd.site_id = y.site_id AND sd.day = y.day)
        UNION ALL
        -- Hours: those of [a, c) outside the whole days, and those of a special day.
        -- A special hour is read raw; where raw pings are gone, a dirty one is taken as it is
        -- and one that maintenance touches is left out.
        SELECT r.site_id, r.pings, r.pings, r.pings_up, r.pings_down_confirmed, r.up_us,
               r.down_us, r.up_response_ms_sum, r.up_response_count
          FROM (SELECT q.* FROM ping_rollup_hourly AS q
                 WHERE ((q.hour >= a AND q.hour < least(d0, c))
                        OR (q.hour >= greatest(d1, a) AND q.hour < c))
                   AND (only_sites IS NULL OR q.site_id IN (SELECT chosen.id FROM chosen))
                UNION ALL
                SELECT q.* FROM special_days AS sd
                  JOIN ping_rollup_hourly AS q
                    ON q.site_id = sd.site_id AND q.hour >= sd.day
                   AND q.hour < sd.day + interval '24 hours'
                 WHERE sd.day >= d0 AND sd.day < d1) AS r
         WHERE NOT EXISTS (SELECT 1 FROM special_hours AS h
                            WHERE h.site_id = r.site_id AND h.hour = r.hour AND h.read_raw
                              AND (h.hour >= raw_from OR h.in_maintenance))
        UNION ALL
        SELECT w.site_id, count(*), count(*) FILTER (WHERE w.counted),
               count(*) FILTER (WHERE w.counted AND w.up),
               count(*) FILTER (WHERE w.counted AND w.confirmed),
               coalesce(sum(w.span_us) FILTER (WHERE w.counted AND w.up), 0),
               coalesce(sum(w.span_us) FILTER (WHERE w.counted AND NOT w.up), 0),
               sum(w.response_time_ms) FILTER (WHERE w.counted AND w.up),
               count(w.response_time_ms) FILTER (WHERE w.counted AND w.up)
          FROM raw AS w GROUP BY w.site_id
    ),
    summed AS (
        SELECT p.site_id, sum(p.received) AS received, sum(p.n) AS n, sum(p.u) AS u,
               sum(p.cd) AS cd, sum(p.up_us) AS up_us, sum(p.down_us) AS down_us,
               sum(p.s) AS s, sum(p.k) AS k
          FROM parts AS p GROUP BY p.site_id
    ),
    dropped AS (
        SELECT EXISTS (SELECT 1 FROM special_hours AS h
                        WHERE h.hour < raw_from AND h.in_maintenance) AS any_dropped
    )
    SELECT m.site_id,
           uptimelab_uptime(pol, m.n, m.u, m.cd, m.up_us, m.down_us),
           coalesce(div(2 * m.s + m.k, nullif(2 * m.k, 0)), 0)::integer,
           m.n::integer,
           uptimelab_coverage(m.received, coalesce(st.interval_ms, interval_default), width),
           cut OR (SELECT any_dropped FROM dropped),
           CASE WHEN cut THEN a ELSE lo END
      FROM summed AS m JOIN sites AS st ON st.id = m.site_id
     WHERE m.received > 0;
END;
$$;

-- site_stats under a policy, from raw pings only (the definition of truth), for a refresh time t.
CREATE OR REPLACE FUNCTION uptimelab_site_stats_policy_reference(
    t timestamptz, policy text DEFAULT NULL, exclude_maintenance boolean DEFAULT NULL
) RETURNS TABLE (
    site_id uuid,
    uptime_1h real, uptime_24h real, uptime_7d real, uptime_30d real,
    avg_response_time_1h integer, avg_response_time_24h integer, avg_response_time_7d integer,
    avg_response_time_30d integer,
    pings_1h integer, pings_24h integer, pings_7d integer, pings_30d integer,
    coverage_1h real, coverage_24h real, coverage_7d real,
    current_status text, last_checked timestamptz
)
LANGUAGE sql STABLE
SET jit = off AS $$
    WITH latest AS (
        SELECT DISTINCT ON (p.site_id) p.site_id, p.status, p.checked_at
          FROM pings AS p
         WHERE p.checked_at <= t
         ORDER BY p.site_id, p.checked_at DESC, p.location COLLATE "C" DESC
    )
    SELECT l.site_id,
           coalesce(w1.uptime, 0), coalesce(w24.uptime, 0), coalesce(w7.uptime, 0),
           coalesce(w30.uptime, 0),
           coalesce(w1.avg_response_time, 0), coalesce(w24.avg_response_time, 0),
           coalesce(w7.avg_response_time, 0), coalesce(w30.avg_response_time, 0),
           coalesce(w1.pings, 0), coalesce(w24.pings, 0), coalesce(w7.pings, 0),
           coalesce(w30.pings, 0),
           coalesce(w1.coverage, 0), coalesce(w24.coverage, 0), coalesce(w7.coverage, 0),
           l.status, l.checked_at
      FROM latest AS l
      LEFT JOIN uptimelab_window_reference(t, interval '1 hour', $2, $3) AS w1
             USING (site_id)
      LEFT JOIN uptimelab_window_reference(t, interval '24 hours', $2, $3)
             AS w24 USING (site_id)
      LEFT JOIN uptimelab_window_reference(t, interval '168 hours', $2, $3)
             AS w7 USING (site_id)
      LEFT JOIN uptimelab_window_reference(t, interval '720 hours', $2, $3)
             AS w30 USING (site_id)
$$;

-- The same from the rollups (the fast path). Under samples without exclusion, 1h, 24h and 7d
-- come from sql/010's path, which is tuned for the collector's per-batch refresh.
CREATE OR REPLACE FUNCTION uptimelab_site_stats_policy_at(
    t timestamptz, policy text DEFAULT NULL, exclude_maintenance boolean DEFAULT NULL,
    only_sites uuid[] DEFAULT NULL
) RETURNS TABLE (
    site_id uuid,
    uptime_1h real, uptime_24h real, uptime_7d real, uptime_30d real,
    avg_response_time_1h integer, avg_response_time_24h integer, avg_response_time_7d integer,
    avg_response_time_30d integer,
    pings_1h integer, pings_24h integer, pings_7d integer, pings_30d integer,
    coverage_1h real, coverage_24h real, coverage_7d real,
    current_status text, last_checked timestamptz
)
LANGUAGE plpgsql STABLE
SET jit = off AS $$
DECLARE
    pol  text;
    excl boolean;
    interval_default integer;
BEGIN
    SELECT coalesce(uptimelab_site_stats_policy_at.policy, u.policy),
           coalesce(uptimelab_site_stats_policy_at.exclude_maintenance, u.exclude_maintenance),
           u.default_interval_ms
      INTO pol, excl, interval_default FROM uptime_settings AS u;
    IF pol = 'samples' AND NOT excl THEN
        RETURN QUERY
        SELECT f.site_id, f.uptime_1h, f.uptime_24h, f.uptime_7d, coalesce(w30.uptime, 0),
               f.avg_response_time_1h, f.avg_response_time_24h, f.avg_response_time_7d,
               coalesce(w30.avg_response_time, 0),
               f.pings_1h, f.pings_24h, f.pings_7d, coalesce(w30.pings, 0),
               uptimelab_coverage(f.pings_1h, coalesce(st.interval_ms, interval_default),
                                  interval '1 hour'),
               uptimelab_coverage(f.pings_24h, coalesce(st.interval_ms, interval_default),
                                  interval '24 hours'),
               uptimelab_coverage(f.pings_7d, coalesce(st.interval_ms, interval_default),
                                  interval '168 hours'),
               f.current_status, f.last_checked
          FROM uptimelab_site_stats_at(t, only_sites) AS f
          JOIN sites AS st ON st.id = f.site_id
          LEFT JOIN uptimelab_window_at(t, interval '720 hours', pol, excl, only_sites) AS w30
                 ON w30.site_id = f.site_id;
        RETURN;
    END IF;
    RETURN QUERY
    WITH chosen (id) AS (SELECT DISTINCT unnest(only_sites)),
    latest AS (
        SELECT s.id AS site_id, l.status, l.checked_at
          FROM sites AS s
         CROSS JOIN LATERAL (
               SELECT p.status, p.checked_at FROM pings AS p
                WHERE p.site_id = s.id AND p.checked_at <= t
                ORDER BY p.checked_at DESC, p.location COLLATE "C" DESC LIMIT 1) AS l
         WHERE only_sites IS NULL OR s.id IN (SELECT chosen.id FROM chosen)
    )
    SELECT l.site_id,
           coalesce(w1.uptime, 0), coalesce(w24.uptime, 0), coalesce(w7.uptime, 0),
           coalesce(w30.uptime, 0),
           coalesce(w1.avg_response_time, 0), coalesce(w24.avg_response_time, 0),
           coalesce(w7.avg_response_time, 0), coalesce(w30.avg_response_time, 0),
           coalesce(w1.pings, 0), coalesce(w24.pings, 0), coalesce(w7.pings, 0),
           coalesce(w30.pings, 0),
           coalesce(w1.coverage, 0), coalesce(w24.coverage, 0), coalesce(w7.coverage, 0),
           l.status, l.checked_at
      FROM latest AS l
      LEFT JOIN uptimelab_window_at(t, interval '1 hour', pol, excl, only_sites) AS w1
             ON w1.site_id = l.site_id
      LEFT JOIN uptimelab_window_at(t, interval '24 hours', pol, excl, only_sites) AS w24
             ON w24.site_id = l.site_id
      LEFT JOIN uptimelab_window_at(t, interval '168 hours', pol, excl, only_sites) AS w7
             ON w7.site_id = l.site_id
      LEFT JOIN uptimelab_window_at(t, interval '720 hours', pol, excl, only_sites) AS w30
             ON w30.site_id = l.site_id;
END;
$$;

CREATE OR REPLACE FUNCTION uptimelab_settle_per_refresh() RETURNS integer
LANGUAGE sql IMMUTABLE AS $$ SELECT 200 $$;

-- Advance the rollup, then upsert site_stats under uptime_settings' policy for some sites (a
-- batch's) or all, and drop the rows of those sites that no longer have a ping. Returns the rows
-- written. (sql/008's, with the columns of this file.)
CREATE OR REPLACE FUNCTION uptimelab_refresh_site_stats(
    t timestamptz DEFAULT now(), only_sites uuid[] DEFAULT NULL
) RETURNS integer
LANGUAGE plpgsql
SET jit = off AS $$
DECLARE
    written integer;
    pol     text;
    excl    boolean;
BEGIN
    PERFORM uptimelab_advance_rollup(now());
    -- A bounded share of the settling per refresh: an hour's rows are spread over the batches
    -- of the next minutes instead of one batch (ul.refresh_stats settles all first).
    PERFORM uptimelab_settle_rollup(uptimelab_settle_per_refresh());
    SELECT u.policy, u.exclude_maintenance INTO pol, excl FROM uptime_settings AS u;
    WITH fresh AS (
        SELECT f.*, c.cert_expires_at
          FROM uptimelab_site_stats_policy_at(t, pol, excl, only_sites) AS f
          LEFT JOIN LATERAL (
               SELECT p.cert_expires_at FROM pings AS p
                WHERE p.site_id = f.site_id AND p.checked_at <= t
                  AND p.cert_expires_at IS NOT NULL
                ORDER BY p.checked_at DESC, p.location COLLATE "C" DESC LIMIT 1) AS c ON true
    ),
    gone AS (
        DELETE FROM site_stats AS ss
         WHERE (only_sites IS NULL OR ss.site_id = ANY (only_sites))
           AND NOT EXISTS (SELECT 1 FROM fresh WHERE fresh.site_id = ss.site_id)
    ),
    upserted AS (
        INSERT INTO site_stats AS ss (
            site_id, uptime_1h, uptime_24h, uptime_7d, uptime_30d,
            avg_response_time_1h, avg_response_time_24h, avg_response_time_7d,
            avg_response_time_30d, pings_1h, pings_24h, pings_7d, pings_30d,
            coverage_1h, coverage_24h, coverage_7d, current_status, last_checked,
            cert_expires_at, policy, maintenance_excluded)
        SELECT f.site_id, f.uptime_1h, f.uptime_24h, f.uptime_7d, f.uptime_30d,
               f.avg_response_time_1h, f.avg_response_time_24h, f.avg_response_time_7d,
               f.avg_response_time_30d, f.pings_1h, f.pings_24h, f.pings_7d, f.pings_30d,
               f.coverage_1h, f.coverage_24h, f.coverage_7d, f.current_status, f.last_checked,
               f.cert_expires_at, pol, excl
          FROM fresh AS f
        ON CONFLICT (site_id) DO UPDATE SET
            uptime_1h = EXCLUDED.uptime_1h, uptime_24h = EXCLUDED.uptime_24h,
            uptime_7d = EXCLUDED.uptime_7d, uptime_30d = EXCLUDED.uptime_30d,
            avg_response_time_1h = EXCLUDED.avg_response_time_1h,
            avg_response_time_24h = EXCLUDED.avg_response_time_24h,
            avg_response_time_7d = EXCLUDED.avg_response_time_7d,
            avg_response_time_30d = EXCLUDED.avg_response_time_30d,
            pings_1h = EXCLUDED.pings_1h, pings_24h = EXCLUDED.pings_24h,
            pings_7d = EXCLUDED.pings_7d, pings_30d = EXCLUDED.pings_30d,
            coverage_1h = EXCLUDED.coverage_1h, coverage_24h = EXCLUDED.coverage_24h,
            coverage_7d = EXCLUDED.coverage_7d,
            current_status = EXCLUDED.current_status, last_checked = EXCLUDED.last_checked,
            cert_expires_at = EXCLUDED.cert_expires_at,
            policy = EXCLUDED.policy, maintenance_excluded = EXCLUDED.maintenance_excluded,
            updated_at = now()
        RETURNING 1
    )
    SELECT count(*)::integer INTO written FROM upserted;
    RETURN written;
END;
$$;
