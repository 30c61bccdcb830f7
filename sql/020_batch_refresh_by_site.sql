-- uptimelab schema, version 20: a batch's stats refresh costs its own sites, not the fleet's.
-- Never edit an applied file: add a new numbered file instead.
--
-- A collector refreshes site_stats for each micro-batch's sites (about a second of pings). Four
-- parts of that refresh still read the whole fleet and filtered by `IN (chosen)` afterwards, so
-- a batch of 1 000 sites cost what the fleet weighed: on a 300 000-site fleet (uptimelab perf
-- --collectors 3) one refresh took 1.5 s, 1.5 ms a site, and PostgreSQL spent more CPU than the
-- three collectors together:
--   * uptimelab_ping_values built its per-site table (down_after, G(s)) for every site, and the
--     30-day window joined it (0.95 s of the 1.5 s);
--   * uptimelab_site_stats_policy_at joined its result with all sites by a hash (0.27 s);
--   * uptimelab_site_stats_at read every ping of the current hour and of the three windows' far
--     edges (an hour each), and the hourly rollup of the whole week, then kept the batch's: a
--     cost that grows through the hour and with history (1 000 sites a second make 3.6 million
--     pings an hour, and 7 days of a 300 000-site fleet are 50 million hourly rows);
--   * uptimelab_window_at read the daily rollup of 30 days, the dirty rows and the hourly edges
--     of every site the same way.
-- Each part now has two branches: all sites (only_sites NULL: read by time, as before) and the
-- chosen sites (read by site through the primary keys (site_id, checked_at|hour|day)); a
-- branch that does not apply is a one-time filter that PostgreSQL skips. The results are the
-- same, row for row (the property tests compare them with the reference functions and pandas).
-- uptimelab_site_stats_at is planned without JIT, like the others: with its branches, a call
-- for all sites passed the JIT thresholds and spent 2.4 s compiling a query that runs in 20 ms.
--
-- And each refresh took the rollup's exclusive lock (uptimelab_advance_rollup) even when there
-- was no hour to roll up, holding every other collector's COPY until it committed: seen in
-- pg_stat_activity as writers waiting on Lock/advisory for seconds. It now reads the watermark
-- first. A refresh reads its stats in one statement, one snapshot: the watermark and the rollup
-- rows it sees agree whether or not another collector advances meanwhile.

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
    parts AS (
        SELECT r.site_id, x.w, r.pings::bigint AS n, r.pings_up::bigint AS u,
               r.up_response_ms_sum::numeric AS s, r.up_response_count::bigint AS c
          FROM windows AS x
          JOIN ping_rollup_hourly AS r ON r.hour >= x.a AND r.hour < x.c
         WHERE only_sites IS NULL
        UNION ALL
        SELECT chosen.id, x.w, r.pings::bigint, r.pings_up::bigint,
               r.up_response_ms_sum::numeric, r.up_response_count::bigint
          FROM chosen CROSS JOIN windows AS x
         CROSS JOIN LATERAL (
               SELECT q.* FROM ping_rollup_hourly AS q
                WHERE q.site_id = chosen.id AND q.hour >= x.a AND q.hour < x.c
               OFFSET 0) AS r
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
    -- Only the sites whose pings the ranges hold (all sites made this O(fleet) per call).
    site AS (
        SELECT s.id, s.down_after,
               1000 * (coalesce(s.interval_ms, u.default_interval_ms)::bigint
                       + coalesce(s.timeout_ms, u.default_timeout_ms)) AS gap_us
          FROM (SELECT DISTINCT c.site_id FROM core AS c) AS k
          JOIN sites AS s ON s.id = k.site_id
         CROSS JOIN uptime_settings AS u
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
                  JOIN pings AS p ON p.site_id = q.site_id
                                 AND p.checked_at > q.r_lo AND p.checked_at <= q.r_hi
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
         CROSS JOIN LATERAL (SELECT s.interval_ms FROM sites AS s WHERE s.id = f.site_id
                              LIMIT 1) AS st
          LEFT JOIN uptimelab_window_at(t, interval '720 hours', pol, excl, only_sites) AS w30
                 ON w30.site_id = f.site_id;
        RETURN;
    END IF;
    RETURN QUERY
    WITH chosen (id) AS (SELECT DISTINCT unnest(only_sites)),
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

-- The watermark's advance takes the rollup's lock only when there is an hour to roll up (sql/013's
-- otherwise the same).
CREATE OR REPLACE FUNCTION uptimelab_advance_rollup(upto timestamptz DEFAULT now())
RETURNS timestamptz
LANGUAGE plpgsql
SET jit = off AS $$
DECLARE
    mark    timestamptz;
    target  timestamptz := date_trunc('hour', least(upto, now()), 'UTC');
BEGIN
    -- Nothing to advance (every call but one an hour): no lock. The exclusive lock waits for
    -- every writer in flight and holds the writers that come after it until this transaction
    -- ends, which is the whole refresh: taken on every call, it queued the collectors' COPYs
    -- behind each other's refreshes.
    SELECT watermark INTO mark FROM ping_rollup_state;
    IF target <= mark THEN
        RETURN mark;
    END IF;
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
