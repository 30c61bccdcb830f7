-- uptimelab schema, version 24: a batch's 7-day stats read whole days from the daily rollup.
-- Never edit an applied file: add a new numbered file instead.
--
-- A refresh of a batch's sites (uptimelab_site_stats_at(t, chosen), sql/020) read the 7-day
-- window from about 168 hourly rows a site, and the 24-hour window again from 23 of them. A
-- site's hourly rows are written an hour at a time for the whole fleet, so each is on a page of
-- its own: on a benchmark history with 8 days of hourly rows, that read was 190 000 rows and
-- 200 000 buffers for 1 000 sites, most of the refresh (EXPLAIN ANALYZE: 1.3 s of 1.5 s). The
-- chosen sites' branch now reads the week's whole UTC days from ping_rollup_daily (as
-- uptimelab_window_at does for long windows) and the hourly rollup only for the hours outside
-- them, each hourly row once for the three windows. A day with a dirty hour is read by the hour:
-- a late ping reaches its hourly row at once but its day's row only when the hour is settled.
-- The all-sites branch (only_sites NULL) still reads hours by time: the property tests compare
-- the two.
--
-- And uptimelab_window_at's raw edges of the chosen sites under samples (the 30-day window's two
-- edges in a refresh) were a join the planner could make a hash of the pings of every site in
-- the edges' partitions (on the benchmark, all of today's 240 000 to keep 1 348: 130 ms of its
-- 330, growing with the fleet through the day); each range is now read through its site's index,
-- as sql/020 does for the other chosen-site reads. Otherwise sql/020's.

CREATE OR REPLACE FUNCTION uptimelab_site_stats_at(t timestamptz, only_sites uuid[] DEFAULT NULL)
RETURNS TABLE (
    site_id uuid,
    uptime_1h real, uptime_24h real, uptime_7d real,
    avg_response_time_1h integer, avg_response_time_24h integer, avg_response_time_7d integer,
    pings_1h integer, pings_24h integer, pings_7d integer,
    current_status text, last_checked timestamptz
)
LANGUAGE sql STABLE
SET jit = off AS $$
    WITH chosen (id) AS (SELECT DISTINCT unnest(only_sites)),
    windows (w, lo, a, c) AS (
        SELECT v.w, t - v.width, v.a, greatest(v.a, least(date_trunc('hour', t, 'UTC'), st.watermark))
          FROM (SELECT w, width, date_trunc('hour', t - width, 'UTC') + interval '1 hour' AS a
                  FROM (VALUES (1, interval '1 hour'), (24, interval '24 hours'),
                               (168, interval '168 hours')) AS x (w, width)) AS v
         CROSS JOIN ping_rollup_state AS st
    ),
    -- The week's whole UTC days [d0, d1) inside its hours [a, c) (as uptimelab_window_at's):
    -- every hour of such a day is below the watermark, so its daily row was rewritten by the
    -- advance that passed the day's last hour, and since then by each settle of its hours.
    week (a, c, d0, d1, a24) AS (
        SELECT x.a, x.c, x.d0, greatest(x.d0, date_trunc('day', x.c, 'UTC')),
               (SELECT y.a FROM windows AS y WHERE y.w = 24)
          FROM (SELECT v.a, v.c,
                       CASE WHEN date_trunc('day', v.a, 'UTC') < v.a
                            THEN date_trunc('day', v.a, 'UTC') + interval '24 hours'
                            ELSE v.a END AS d0
                  FROM windows AS v WHERE v.w = 168) AS x
    ),
    -- The chosen sites' days of [d0, d1) with a dirty hour.
    special (site_id, day) AS (
        SELECT DISTINCT chosen.id, date_trunc('day', q.hour, 'UTC')
          FROM chosen CROSS JOIN week AS k
         CROSS JOIN LATERAL (
               SELECT z.hour FROM ping_rollup_dirty AS z
                WHERE z.site_id = chosen.id AND z.hour >= k.d0 AND z.hour < k.d1
               OFFSET 0) AS q
    ),
    -- The chosen sites' hourly rows the windows need, from disjoint ranges: the week's hours
    -- before d0, its dirty days (up to the tail), and the tail from the first hour of the
    -- 24-hour window or d1, whichever is earlier, to c (d0 <= a24: a24 - a = 144 hours).
    hour_ranges (site_id, lo, hi) AS (
        SELECT chosen.id, k.a, least(k.d0, k.c) FROM chosen CROSS JOIN week AS k
        UNION ALL
        SELECT sd.site_id, sd.day,
               least(sd.day + interval '24 hours', greatest(k.d1, k.a), k.a24)
          FROM special AS sd CROSS JOIN week AS k
        UNION ALL
        SELECT chosen.id, least(greatest(k.d1, k.a), k.a24), k.c
          FROM chosen CROSS JOIN week AS k
    ),
    hours AS (
        SELECT h.site_id, r.hour, r.pings, r.pings_up, r.up_response_ms_sum, r.up_response_count
          FROM hour_ranges AS h
         CROSS JOIN LATERAL (
               SELECT q.* FROM ping_rollup_hourly AS q
                WHERE q.site_id = h.site_id AND q.hour >= h.lo AND q.hour < h.hi
               OFFSET 0) AS r
         WHERE h.lo < h.hi
    ),
    parts AS (
        SELECT r.site_id, x.w, r.pings::bigint AS n, r.pings_up::bigint AS u,
               r.up_response_ms_sum::numeric AS s, r.up_response_count::bigint AS c
          FROM windows AS x
          JOIN ping_rollup_hourly AS r ON r.hour >= x.a AND r.hour < x.c
         WHERE only_sites IS NULL
        UNION ALL
        -- A chosen site's whole days of the week from the daily rollup, but for a day with a
        -- dirty hour (a late ping's hour is in the hourly row at once, in its day's row only
        -- when settled): that day is read by the hour below.
        SELECT y.site_id, 168, y.pings, y.pings_up, y.up_response_ms_sum::numeric,
               y.up_response_count
          FROM chosen CROSS JOIN week AS k
         CROSS JOIN LATERAL (
               SELECT z.* FROM ping_rollup_daily AS z
                WHERE z.site_id = chosen.id AND z.day >= k.d0 AND z.day < k.d1
               OFFSET 0) AS y
         WHERE NOT EXISTS (SELECT 1 FROM special AS sd
                            WHERE sd.site_id = y.site_id AND sd.day = y.day)
        UNION ALL
        -- Its hourly rows, each read once for all three windows; the week takes those outside
        -- its whole days and those of a dirty day.
        SELECT r.site_id, x.w, r.pings::bigint, r.pings_up::bigint,
               r.up_response_ms_sum::numeric, r.up_response_count::bigint
          FROM hours AS r
          JOIN windows AS x ON r.hour >= x.a AND r.hour < x.c
         CROSS JOIN week AS k
         WHERE x.w <> 168 OR r.hour < k.d0 OR r.hour >= k.d1
            OR EXISTS (SELECT 1 FROM special AS sd
                        WHERE sd.site_id = r.site_id
                          AND sd.day = date_trunc('day', r.hour, 'UTC'))
        UNION ALL
        SELECT p.site_id, x.w, count(*), count(*) FILTER (WHERE p.status = 'up'),
               sum(p.response_time_ms) FILTER (WHERE p.status = 'up'),
               count(p.response_time_ms) FILTER (WHERE p.status = 'up')
          FROM windows AS x
          JOIN pings AS p ON p.checked_at > x.lo AND p.checked_at < x.a
         WHERE only_sites IS NULL
         GROUP BY p.site_id, x.w
        UNION ALL
        SELECT p.site_id, x.w, count(*), count(*) FILTER (WHERE p.status = 'up'),
               sum(p.response_time_ms) FILTER (WHERE p.status = 'up'),
               count(p.response_time_ms) FILTER (WHERE p.status = 'up')
          FROM chosen CROSS JOIN windows AS x
         CROSS JOIN LATERAL (
               SELECT q.site_id, q.status, q.response_time_ms FROM pings AS q
                WHERE q.site_id = chosen.id AND q.checked_at > x.lo AND q.checked_at < x.a
               OFFSET 0) AS p
         GROUP BY p.site_id, x.w
        UNION ALL
        SELECT p.site_id, x.w, count(*), count(*) FILTER (WHERE p.status = 'up'),
               sum(p.response_time_ms) FILTER (WHERE p.status = 'up'),
               count(p.response_time_ms) FILTER (WHERE p.status = 'up')
          FROM pings AS p
          JOIN windows AS x ON p.checked_at >= x.c
         WHERE only_sites IS NULL
           AND p.checked_at >= (SELECT min(windows.c) FROM windows) AND p.checked_at <= t
         GROUP BY p.site_id, x.w
        UNION ALL
        SELECT p.site_id, x.w, count(*), count(*) FILTER (WHERE p.status = 'up'),
               sum(p.response_time_ms) FILTER (WHERE p.status = 'up'),
               count(p.response_time_ms) FILTER (WHERE p.status = 'up')
          FROM chosen
         CROSS JOIN LATERAL (
               SELECT q.site_id, q.checked_at, q.status, q.response_time_ms FROM pings AS q
                WHERE q.site_id = chosen.id AND q.checked_at <= t
                  AND q.checked_at >= (SELECT min(windows.c) FROM windows)
               OFFSET 0) AS p
          JOIN windows AS x ON p.checked_at >= x.c
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
          FROM (SELECT sites.id FROM sites WHERE only_sites IS NULL
                UNION ALL
                SELECT k.id FROM chosen
                 CROSS JOIN LATERAL (SELECT sites.id FROM sites WHERE sites.id = chosen.id
                                     OFFSET 0) AS k) AS s
         CROSS JOIN LATERAL (
               SELECT p.status, p.checked_at FROM pings AS p
                WHERE p.site_id = s.id AND p.checked_at <= t
                ORDER BY p.checked_at DESC, p.location COLLATE "C" DESC LIMIT 1) AS l
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
    plain    boolean;
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
    -- Under samples a raw ping counts by itself: no runs or spans, so no per-ping values.
    plain := pol = 'samples';
    RETURN QUERY
    WITH chosen (id) AS (SELECT DISTINCT unnest(only_sites)),
    maint AS (
        SELECT w.site_id, w.starts_at, w.ends_at
          FROM uptimelab_maintenance_windows(lo, t + interval '1 microsecond') AS w
         WHERE excl
    ),
    special AS (
        SELECT d.site_id, d.hour, false AS in_maintenance FROM ping_rollup_dirty AS d
         WHERE only_sites IS NULL AND d.hour >= a AND d.hour < c
        UNION ALL
        SELECT d.site_id, d.hour, false
          FROM chosen CROSS JOIN LATERAL (
               SELECT q.site_id, q.hour FROM ping_rollup_dirty AS q
                WHERE q.site_id = chosen.id AND q.hour >= a AND q.hour < c OFFSET 0) AS d
        UNION ALL
        SELECT r.site_id, r.hour, true
          FROM maint AS m
         CROSS JOIN LATERAL generate_series(
                   date_trunc('hour', greatest(m.starts_at, a), 'UTC'),
                   least(m.ends_at, c) - interval '1 microsecond', interval '1 hour') AS g (hour)
          JOIN ping_rollup_hourly AS r
            ON r.hour = g.hour AND (m.site_id IS NULL OR m.site_id = r.site_id)
         WHERE only_sites IS NULL OR r.site_id IN (SELECT chosen.id FROM chosen)
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
         WHERE NOT plain
    ),
    -- The raw ranges under samples: the pings themselves (the ranges do not overlap), a range
    -- of every site by time, a range of one site by its own index.
    raw_plain AS (
        SELECT x.site_id, x.up, x.response_time_ms,
               NOT (excl AND EXISTS (
                        SELECT 1 FROM maint AS m
                         WHERE (m.site_id IS NULL OR m.site_id = x.site_id)
                           AND x.checked_at >= m.starts_at AND x.checked_at < m.ends_at))
                   AS counted
          FROM (SELECT p.site_id, p.checked_at, p.status = 'up' AS up, p.response_time_ms
                  FROM raw_ranges AS q
                  JOIN pings AS p ON p.checked_at > q.r_lo AND p.checked_at <= q.r_hi
                 WHERE q.site_id IS NULL AND plain
                UNION ALL
                SELECT p.site_id, p.checked_at, p.status = 'up', p.response_time_ms
                  FROM raw_ranges AS q
                 CROSS JOIN LATERAL (
                       SELECT z.site_id, z.checked_at, z.status, z.response_time_ms
                         FROM pings AS z
                        WHERE z.site_id = q.site_id
                          AND z.checked_at > q.r_lo AND z.checked_at <= q.r_hi
                       OFFSET 0) AS p
                 WHERE q.site_id IS NOT NULL AND plain) AS x
    ),
    parts AS (
        SELECT y.site_id, y.pings AS received, y.pings AS n, y.pings_up AS u,
               y.pings_down_confirmed AS cd, y.up_us, y.down_us, y.up_response_ms_sum AS s,
               y.up_response_count AS k
          FROM (SELECT q.* FROM ping_rollup_daily AS q
                 WHERE only_sites IS NULL AND q.day >= d0 AND q.day < d1
                UNION ALL
                SELECT q.* FROM chosen CROSS JOIN LATERAL (
                       SELECT z.* FROM ping_rollup_daily AS z
                        WHERE z.site_id = chosen.id AND z.day >= d0 AND z.day < d1
                       OFFSET 0) AS q) AS y
         WHERE NOT EXISTS (SELECT 1 FROM special_days AS sd
                            WHERE sd.site_id = y.site_id AND sd.day = y.day)
        UNION ALL
        -- Hours: those of [a, c) outside the whole days, and those of a special day.
        -- A special hour is read raw; where raw pings are gone, a dirty one is taken as it is
        -- and one that maintenance touches is left out.
        SELECT r.site_id, r.pings::bigint, r.pings::bigint, r.pings_up::bigint,
               r.pings_down_confirmed::bigint, r.up_us, r.down_us, r.up_response_ms_sum,
               r.up_response_count::bigint
          FROM (SELECT q.* FROM ping_rollup_hourly AS q
                 WHERE only_sites IS NULL
                   AND ((q.hour >= a AND q.hour < least(d0, c))
                        OR (q.hour >= greatest(d1, a) AND q.hour < c))
                UNION ALL
                -- The two hour ranges do not overlap (d0 <= d1).
                SELECT q.* FROM chosen CROSS JOIN LATERAL (
                       SELECT z.* FROM ping_rollup_hourly AS z
                        WHERE z.site_id = chosen.id
                          AND ((z.hour >= a AND z.hour < least(d0, c))
                               OR (z.hour >= greatest(d1, a) AND z.hour < c))
                       OFFSET 0) AS q
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
               coalesce(sum(w.span_us) FILTER (WHERE w.counted AND w.up), 0)::bigint,
               coalesce(sum(w.span_us) FILTER (WHERE w.counted AND NOT w.up), 0)::bigint,
               sum(w.response_time_ms) FILTER (WHERE w.counted AND w.up),
               count(w.response_time_ms) FILTER (WHERE w.counted AND w.up)
          FROM raw AS w GROUP BY w.site_id
        UNION ALL
        SELECT w.site_id, count(*), count(*) FILTER (WHERE w.counted),
               count(*) FILTER (WHERE w.counted AND w.up), 0, 0, 0,
               sum(w.response_time_ms) FILTER (WHERE w.counted AND w.up),
               count(w.response_time_ms) FILTER (WHERE w.counted AND w.up)
          FROM raw_plain AS w GROUP BY w.site_id
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
      FROM summed AS m
     CROSS JOIN LATERAL (SELECT s.interval_ms FROM sites AS s WHERE s.id = m.site_id
                          OFFSET 0) AS st
     WHERE m.received > 0;
END;
$$;
