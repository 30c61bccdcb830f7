-- uptimelab schema, version 19: long windows, two fixes to sql/013.
-- Never edit an applied file: add a new numbered file instead.
--
-- 1. A dirty rollup row waits for what can change it. sql/013 marks a settled row dirty again while its values may still change: a ping of an open
-- run shorter than D(s), or a latest ping younger than G(s). Each settle took the oldest dirty
-- rows first, recomputed them and marked them dirty again, so the rows of a site that stopped
-- (deactivated, deleted from the probe list, a location gone) in the middle of a short run stayed
-- dirty for ever and came first at every settle: 200 of them took the whole share of every
-- per-batch refresh (the newer hours were never settled there), and 5 000 kept ul.refresh_stats'
-- settling loop going for ever. Now such a row records what it waits for: the watermark reaching
-- ``ready_at`` (the latest ping's G(s) has passed) or a ping of its site after ``seen_until``
-- (a run goes on or ends). Until then the settle passes it by; the stats go on reading it raw,
-- as every dirty row. A row marked dirty again by a write (the trigger, the advance) is ready at
-- once: the update of its seq clears what it waited for.

ALTER TABLE ping_rollup_dirty
    ADD COLUMN IF NOT EXISTS ready_at   timestamptz,
    ADD COLUMN IF NOT EXISTS seen_until timestamptz;

CREATE OR REPLACE FUNCTION uptimelab_rollup_dirty_remarked() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.seq IS DISTINCT FROM OLD.seq THEN
        NEW.ready_at := NULL;
        NEW.seen_until := NULL;
    END IF;
    RETURN NEW;
END;
$$;

DROP TRIGGER IF EXISTS ping_rollup_dirty_remarked ON ping_rollup_dirty;
CREATE TRIGGER ping_rollup_dirty_remarked BEFORE UPDATE ON ping_rollup_dirty
    FOR EACH ROW EXECUTE FUNCTION uptimelab_rollup_dirty_remarked();

-- sql/013's uptimelab_rollup_unsettled, with what each row waits for: the watermark reaching
-- ready_at (the latest ping's checked_at + G(s); infinity for a ping of an open run), or a ping
-- of the site after seen_until (the series' latest ping). A row held by several series waits
-- for the first of them.
CREATE OR REPLACE FUNCTION uptimelab_rollup_unsettled_waits(
    target timestamptz, series_sites uuid[], series_locations text[]
) RETURNS TABLE (site_id uuid, hour timestamptz, ready_at timestamptz, seen_until timestamptz)
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
               max(z.checked_at) OVER (PARTITION BY x.site_id, x.location) AS newest,
               x.down_after, x.gap_us
          FROM series AS x
         CROSS JOIN LATERAL (
               SELECT y.checked_at, row_number() OVER (ORDER BY y.checked_at DESC) AS k,
                      bool_or(y.up) OVER (ORDER BY y.checked_at DESC
                                          ROWS UNBOUNDED PRECEDING) AS up_seen
                 FROM (SELECT p.checked_at, p.status = 'up' AS up FROM pings AS p
                        WHERE p.site_id = x.site_id AND p.location = x.location
                        ORDER BY p.checked_at DESC LIMIT x.down_after) AS y) AS z
    ),
    waiting AS (
        SELECT l.site_id, date_trunc('hour', l.checked_at, 'UTC') AS hour,
               CASE WHEN NOT l.up_seen AND l.trailing < l.down_after THEN 'infinity'
                    ELSE l.checked_at + l.gap_us * interval '1 microsecond'
               END AS ready_at,
               l.newest
          FROM latest AS l
         WHERE l.checked_at < target
           AND ((NOT l.up_seen AND l.trailing < l.down_after)
                OR (l.k = 1 AND l.checked_at + l.gap_us * interval '1 microsecond' > target))
    )
    SELECT w.site_id, w.hour, min(w.ready_at), min(w.newest)
      FROM waiting AS w GROUP BY w.site_id, w.hour
$$;

-- sql/013's settle, taking only the dirty rows that are ready (nothing recorded to wait for, the
-- watermark at ready_at, or a ping of the site after seen_until), and recording what the rows it
-- marks dirty again wait for.
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
      FROM (SELECT * FROM ping_rollup_dirty AS x
             WHERE x.hour < mark
               AND (x.ready_at IS NULL OR x.ready_at <= mark
                    OR EXISTS (SELECT 1 FROM pings AS p
                                WHERE p.site_id = x.site_id AND p.checked_at > x.seen_until))
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

    SELECT array_agg(z.site_id), array_agg(z.location) INTO s_sites, s_locations
      FROM (SELECT DISTINCT p.site_id, p.location
              FROM unnest(d_sites, d_hours) AS q (site_id, hour)
              JOIN pings AS p ON p.site_id = q.site_id AND p.checked_at >= q.hour
                             AND p.checked_at < q.hour + interval '1 hour') AS z;
    INSERT INTO ping_rollup_dirty (site_id, hour, ready_at, seen_until)
    SELECT u.site_id, u.hour, u.ready_at, u.seen_until
      FROM uptimelab_rollup_unsettled_waits(mark, s_sites, s_locations) AS u
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

-- 2. Long windows read their raw edges without per-ping values under samples. A window's
-- partial hours at its two ends (and, under exclusion, its special hours) are read from raw
-- pings; sql/013 put them through uptimelab_ping_values, whose runs and spans (window functions
-- over every series, with index probes for the pings around each range) only the confirmed and
-- time policies need. Under samples a ping counts by itself: the edges are now a plain count
-- of the pings in the ranges. The rollup parts are summed as bigint (numeric only in the final
-- sums). The results are those of sql/013's function, row for row.
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
          FROM ping_rollup_daily AS y
         WHERE y.day >= d0 AND y.day < d1
           AND (only_sites IS NULL OR y.site_id IN (SELECT chosen.id FROM chosen))
           AND NOT EXISTS (SELECT 1 FROM special_days AS sd
                            WHERE sd.site_id = y.site_id AND sd.day = y.day)
        UNION ALL
        -- Hours: those of [a, c) outside the whole days, and those of a special day.
        -- A special hour is read raw; where raw pings are gone, a dirty one is taken as it is
        -- and one that maintenance touches is left out.
        SELECT r.site_id, r.pings::bigint, r.pings::bigint, r.pings_up::bigint,
               r.pings_down_confirmed::bigint, r.up_us, r.down_us, r.up_response_ms_sum,
               r.up_response_count::bigint
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
      FROM summed AS m JOIN sites AS st ON st.id = m.site_id
     WHERE m.received > 0;
END;
$$;
