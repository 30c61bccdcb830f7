-- uptimelab schema, version 6: stats per location, and the quorum verdict across locations.
-- Never edit an applied file: add a new numbered file instead.
--
-- Per location. uptimelab_location_stats(t, only_location, only_sites): the columns of site_stats
-- (the contract in 003_stats.sql: windows (t - W, t], uptime as REAL, averages rounded half away
-- from zero) from one location's pings alone; one row per (site, location) with a ping in
-- (t - 168 hours, t]. site_stats itself stays pooled over every location.
--
-- The quorum verdict of a site at an instant T. A site's interval is sites.interval_ms, or
-- default_interval_ms (the setting MONITORING_INTERVAL_MS, which SQL cannot read) where NULL.
-- Each location's latest ping of the site with checked_at in (T - 2 * interval, T] counts
-- (left-open, right-closed: a ping exactly two intervals old no longer counts, one at T does).
-- With n such locations, d of them down, and K = quorum (NULL: floor(n / 2) + 1), the site is
-- down at T when d >= least(K, n): when fewer locations report than K asks for, it is down
-- only if all of them are down. With n = 0 there is no verdict (NULL).
--
-- Quorum uptime over a window W at t: the verdict sampled at every distinct checked_at of the
-- site's pings, from any location, in (t - W, t] (at such an instant n >= 1); 100 * up instants
-- / instants as REAL (computed in float8), 0 with none.

CREATE OR REPLACE FUNCTION uptimelab_quorum_down(locations bigint, down bigint, quorum integer)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN locations > 0
                THEN down >= least(coalesce(quorum, locations / 2 + 1), locations) END
$$;

-- The counts behind the verdict, as a sweep over time. A location's ping at a, whose next ping
-- of the same site and location is at b, is that location's latest within reach over
-- [a, least(b, a + 2 * interval)): it adds 1 (and 1 down if down) at a and takes it away at the
-- end. For each site and each instant in (lo - 2 * interval, hi] where a count changes: the
-- locations that count and how many of them are down (running sums of the changes, which is
-- what makes this one sort per site instead of a lookup per instant and location), and whether
-- a ping was made then (pinged: an instant the verdict is sampled at).
CREATE OR REPLACE FUNCTION uptimelab_quorum_sweep(
    lo timestamptz, hi timestamptz, default_interval_ms integer, only_sites uuid[] DEFAULT NULL
) RETURNS TABLE (
    site_id uuid, at timestamptz, pinged boolean, locations integer, locations_down integer
)
LANGUAGE sql STABLE AS $$
    WITH reach AS (
        SELECT s.id AS site_id,
               2 * coalesce(s.interval_ms, default_interval_ms) * interval '1 millisecond' AS span
          FROM sites AS s
         WHERE only_sites IS NULL OR s.id = ANY (only_sites)
    ),
    held AS (
        SELECT p.site_id, p.checked_at, (p.status = 'down')::integer AS down,
               least(lead(p.checked_at) OVER (PARTITION BY p.site_id, p.location
                                              ORDER BY p.checked_at),
                     p.checked_at + r.span) AS ends_at
          FROM reach AS r
          JOIN pings AS p ON p.site_id = r.site_id
         -- The first bound only lets the planner skip old partitions (an interval is at most
         -- 24 hours); the second is the site's own.
         WHERE p.checked_at > lo - interval '48 hours'
           AND p.checked_at > lo - r.span AND p.checked_at <= hi
    ),
    changes AS (
        SELECT h.site_id, h.checked_at AS at, 1 AS n, h.down AS d, true AS pinged FROM held AS h
        UNION ALL
        SELECT h.site_id, h.ends_at, -1, -h.down, false FROM held AS h WHERE h.ends_at <= hi
    ),
    summed AS (
        SELECT c.site_id, c.at, bool_or(c.pinged) AS pinged, sum(c.n) AS n, sum(c.d) AS d
          FROM changes AS c
         GROUP BY c.site_id, c.at
    )
    SELECT m.site_id, m.at, m.pinged,
           (sum(m.n) OVER running)::integer, (sum(m.d) OVER running)::integer
      FROM summed AS m
    WINDOW running AS (PARTITION BY m.site_id ORDER BY m.at ROWS UNBOUNDED PRECEDING)
$$;

-- The verdict at every ping instant in (since, until], per site. status is 'down' or 'up'.
CREATE OR REPLACE FUNCTION uptimelab_quorum_verdicts(
    since timestamptz, until timestamptz, default_interval_ms integer,
    quorum integer DEFAULT NULL, only_sites uuid[] DEFAULT NULL
) RETURNS TABLE (
    site_id uuid, checked_at timestamptz, locations integer, locations_down integer, status text
)
LANGUAGE sql STABLE AS $$
    SELECT s.site_id, s.at, s.locations, s.locations_down,
           CASE WHEN uptimelab_quorum_down(s.locations, s.locations_down, quorum)
                THEN 'down' ELSE 'up' END
      FROM uptimelab_quorum_sweep(since, until, default_interval_ms, only_sites) AS s
     WHERE s.pinged AND s.at > since
$$;

-- Quorum stats at t: one row per site with a ping in (t - 168 hours, t]. uptime_W and
-- instants_W over the windows W in {1h, 24h, 7d}; current_status, locations and
-- locations_down: the verdict at t itself and its counts (current_status NULL when no location
-- has pinged the site within two intervals before t).
CREATE OR REPLACE FUNCTION uptimelab_quorum_stats(
    t timestamptz, default_interval_ms integer,
    quorum integer DEFAULT NULL, only_sites uuid[] DEFAULT NULL
) RETURNS TABLE (
    site_id uuid,
    uptime_1h real, uptime_24h real, uptime_7d real,
    instants_1h integer, instants_24h integer, instants_7d integer,
    current_status text, locations integer, locations_down integer
)
LANGUAGE sql STABLE AS $$
    WITH swept AS (
        SELECT * FROM uptimelab_quorum_sweep(t - interval '168 hours', t, default_interval_ms,
                                             only_sites)
    ),
    counted AS (
        SELECT v.site_id,
               count(*) FILTER (WHERE v.at > t - interval '1 hour') AS n1,
               count(*) FILTER (WHERE v.at > t - interval '24 hours') AS n24,
               count(*) AS n7,
               count(*) FILTER (WHERE v.at > t - interval '1 hour' AND NOT v.down) AS u1,
               count(*) FILTER (WHERE v.at > t - interval '24 hours' AND NOT v.down) AS u24,
               count(*) FILTER (WHERE NOT v.down) AS u7
          FROM (SELECT s.site_id, s.at,
                       uptimelab_quorum_down(s.locations, s.locations_down, quorum) AS down
                  FROM swept AS s
                 WHERE s.pinged AND s.at > t - interval '168 hours') AS v
         GROUP BY v.site_id
    ),
    latest AS (
        SELECT DISTINCT ON (s.site_id) s.site_id, s.locations, s.locations_down
          FROM swept AS s
         ORDER BY s.site_id, s.at DESC
    )
    SELECT c.site_id,
           coalesce((100 * c.u1)::float8 / nullif(c.n1, 0), 0)::real,
           coalesce((100 * c.u24)::float8 / nullif(c.n24, 0), 0)::real,
           ((100 * c.u7)::float8 / c.n7)::real,
           c.n1::integer, c.n24::integer, c.n7::integer,
           CASE uptimelab_quorum_down(l.locations, l.locations_down, quorum)
                WHEN true THEN 'down' WHEN false THEN 'up' END,
           l.locations, l.locations_down
      FROM counted AS c JOIN latest AS l USING (site_id)
$$;

-- Stats per location at t, the contract of site_stats for each location's pings alone.
CREATE OR REPLACE FUNCTION uptimelab_location_stats(
    t timestamptz, only_location text DEFAULT NULL, only_sites uuid[] DEFAULT NULL
) RETURNS TABLE (
    site_id uuid, location text,
    uptime_1h real, uptime_24h real, uptime_7d real,
    avg_response_time_1h integer, avg_response_time_24h integer, avg_response_time_7d integer,
    pings_1h integer, pings_24h integer, pings_7d integer,
    current_status text, last_checked timestamptz
)
LANGUAGE sql STABLE AS $$
    WITH recent AS (
        SELECT p.site_id, p.location, p.checked_at, p.status, p.response_time_ms
          FROM pings AS p
         WHERE p.checked_at > t - interval '168 hours' AND p.checked_at <= t
           AND (only_location IS NULL OR p.location = only_location)
           AND (only_sites IS NULL OR p.site_id = ANY (only_sites))
    ),
    counted AS (
        SELECT p.site_id, p.location,
               count(*) FILTER (WHERE p.checked_at > t - interval '1 hour') AS n1,
               count(*) FILTER (WHERE p.checked_at > t - interval '24 hours') AS n24,
               count(*) AS n7,
               count(*) FILTER (WHERE p.checked_at > t - interval '1 hour' AND p.status = 'up') AS u1,
               count(*) FILTER (WHERE p.checked_at > t - interval '24 hours' AND p.status = 'up') AS u24,
               count(*) FILTER (WHERE p.status = 'up') AS u7,
               sum(p.response_time_ms) FILTER (WHERE p.checked_at > t - interval '1 hour' AND p.status = 'up') AS s1,
               sum(p.response_time_ms) FILTER (WHERE p.checked_at > t - interval '24 hours' AND p.status = 'up') AS s24,
               sum(p.response_time_ms) FILTER (WHERE p.status = 'up') AS s7,
               count(p.response_time_ms) FILTER (WHERE p.checked_at > t - interval '1 hour' AND p.status = 'up') AS c1,
               count(p.response_time_ms) FILTER (WHERE p.checked_at > t - interval '24 hours' AND p.status = 'up') AS c24,
               count(p.response_time_ms) FILTER (WHERE p.status = 'up') AS c7
          FROM recent AS p
         GROUP BY p.site_id, p.location
    ),
    latest AS (
        SELECT DISTINCT ON (p.site_id, p.location) p.site_id, p.location, p.status, p.checked_at
          FROM recent AS p
         ORDER BY p.site_id, p.location, p.checked_at DESC
    )
    SELECT c.site_id, c.location,
           coalesce((100 * c.u1)::float8 / nullif(c.n1, 0), 0)::real,
           coalesce((100 * c.u24)::float8 / nullif(c.n24, 0), 0)::real,
           coalesce((100 * c.u7)::float8 / nullif(c.n7, 0), 0)::real,
           coalesce(div(2 * c.s1 + c.c1, nullif(2 * c.c1, 0)), 0)::integer,
           coalesce(div(2 * c.s24 + c.c24, nullif(2 * c.c24, 0)), 0)::integer,
           coalesce(div(2 * c.s7 + c.c7, nullif(2 * c.c7, 0)), 0)::integer,
           c.n1::integer, c.n24::integer, c.n7::integer,
           l.status, l.checked_at
      FROM counted AS c JOIN latest AS l USING (site_id, location)
$$;
