-- uptimelab schema, version 18: what health must know from any process, and the notifications
-- table's time index.
-- Never edit an applied file: add a new numbered file instead.

-- Transitions a collector's notifier could not even record: offered past its full queue and
-- overflow (uptimelab.notify.notifier), so no notification row exists for them. One row per
-- notifier (one per collector run), its counter added to as it goes; health reads the last
-- day's. Kept beside the notifications, pruned with them by `maintain`.
--   notifier_id            made by the notifier at start (the collector run)
--   host, pid, location    where it ran (location: MONITORING_LOCATION)
--   lost                   transitions lost so far; first_lost_at, last_lost_at, last_key: when,
--                          and the stable id of the latest one lost (no secret in it)
CREATE TABLE IF NOT EXISTS notification_losses (
    notifier_id   uuid        PRIMARY KEY,
    host          text        NOT NULL CHECK (length(host) <= 300),
    pid           integer     NOT NULL,
    location      text        NOT NULL CHECK (length(location) <= 300),
    lost          bigint      NOT NULL CHECK (lost > 0),
    first_lost_at timestamptz NOT NULL,
    last_lost_at  timestamptz NOT NULL,
    last_key      text        CHECK (length(last_key) <= 300)
);
CREATE INDEX IF NOT EXISTS notification_losses_last_idx ON notification_losses (last_lost_at);

-- The uptime settings a collector was started with explicitly (UPTIME_POLICY and
-- UPTIME_EXCLUDE_MAINTENANCE in its environment or options; NULL: not given, it follows the
-- recorded one). The collector records them in uptime_settings at start when they differ;
-- health reports a running collector whose explicit setting no longer matches the recorded one
-- (another process recorded its own since).
CREATE TABLE IF NOT EXISTS collector_uptime_settings (
    collector_id        uuid        PRIMARY KEY,
    policy              text        CHECK (policy IN ('samples', 'confirmed', 'time')),
    exclude_maintenance boolean,
    noted_at            timestamptz NOT NULL DEFAULT now(),
    CHECK (policy IS NOT NULL OR exclude_maintenance IS NOT NULL)
);

-- Who last changed the recorded policy or exclusion, and when (status and health show it).
ALTER TABLE uptime_settings
    ADD COLUMN IF NOT EXISTS changed_at timestamptz,
    ADD COLUMN IF NOT EXISTS changed_by text CHECK (length(changed_by) <= 300);

-- Health reads the last day of notifications (and what is pending), `maintain` deletes the old
-- ones: both by recorded_at. Without it, both read the whole table (EXPLAIN on a million rows:
-- README "Notifications").
CREATE INDEX IF NOT EXISTS notifications_recorded_idx ON notifications (recorded_at);

-- Incident tracking: a site that two or more locations report is set aside too when nothing can
-- change in it. sql/017 set aside only one-location sites, so every site of a multi-location
-- fleet went through sql/011's full judgement at every batch (its temporary tables, the
-- incident_series upsert, three correlated subqueries a site and the quorum verdicts' sweep):
-- 60-290 ms a batch of 1 000 sites x 2 locations, all up (benchmarks/incident_tracking.py
-- --locations 2 --explain; README "Incidents per batch"). Such a site is quiet when
--   - its pings in the batch are all up, each location already in incident_series (no
--     location first seen: the verdict's series is not new),
--   - no incident of any of its series lasts to or past its earliest ping in the batch,
--   - it is not flapping,
--   - and no down ping of any location of it is stored after its earliest ping in the batch
--     less 2 x its interval (the verdict's reach): every location's latest ping within reach
--     of any instant from the batch on is then up, so the verdict is up at every instant 011
--     would judge (with no down location, no quorum is met), and nothing before the batch
--     changes.
-- 011 would then recompute nothing for it and skip it in its loop. What 011 also does for such
-- a site is lock its bucket (two collectors storing pings of one site at once judge one after
-- the other); that lock is taken here first, for every site of the batch that two or more
-- locations report, in the same order and under the same keys, and the quiet sites are judged
-- after it (a new snapshot: the other's pings are seen once it committed).
CREATE OR REPLACE FUNCTION uptimelab_track_incidents_fast(
    sites_in uuid[], locations_in text[], firsts timestamptz[], lasts timestamptz[],
    all_up boolean[], default_interval_ms integer, quorum integer DEFAULT NULL,
    flap_changes integer DEFAULT 6, flap_window_ms bigint DEFAULT 3600000
) RETURNS TABLE (kind text, site_id uuid, location text, at timestamptz, incident_id bigint,
                 started_at timestamptz, resolved_at timestamptz, category text, message text)
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
    rest record;
    plans text := current_setting('plan_cache_mode');
BEGIN
    -- One generic plan from the first call (see sql/017).
    PERFORM set_config('plan_cache_mode', 'force_generic_plan', true);
    -- The buckets of the sites two or more locations report (known, or in this batch), as 011
    -- takes them: in order, before anything is judged.
    PERFORM pg_advisory_xact_lock(hashtextextended('uptimelab.incidents.bucket:' || q.bucket, 0))
       FROM (SELECT DISTINCT abs(hashtextextended(m.site_id::text, 0) % 64) AS bucket
               FROM (SELECT u.site_id
                       FROM unnest(sites_in, locations_in) AS u (site_id, location)
                      GROUP BY u.site_id
                     HAVING count(DISTINCT u.location) > 1
                         OR EXISTS (SELECT 1 FROM incident_series AS x
                                     WHERE x.site_id = u.site_id
                                       AND x.location <> min(u.location))) AS m
              ORDER BY 1) AS q;
    SELECT array_agg(z.site_id ORDER BY z.ord) AS sites_in,
           array_agg(z.location ORDER BY z.ord) AS locations_in,
           array_agg(z.first_at ORDER BY z.ord) AS firsts,
           array_agg(z.last_at ORDER BY z.ord) AS lasts,
           array_agg(z.all_up ORDER BY z.ord) AS all_up
      INTO rest
      FROM (SELECT b.*, bool_and(b.quiet) OVER (PARTITION BY b.site_id) AS site_quiet
              FROM (SELECT u.*,
                           u.all_up
                           AND EXISTS (SELECT 1 FROM incident_series AS x
                                        WHERE x.site_id = u.site_id AND x.location = u.location)
                           AND NOT EXISTS (SELECT 1 FROM incidents AS x
                                            WHERE x.site_id = u.site_id
                                              AND (x.resolved_at IS NULL
                                                   OR x.resolved_at >= u.first_at))
                           AND NOT EXISTS (SELECT 1 FROM incident_flapping AS f
                                            WHERE f.site_id = u.site_id AND f.ended_at IS NULL)
                           AND (NOT EXISTS (SELECT 1 FROM incident_series AS x
                                             WHERE x.site_id = u.site_id
                                               AND x.location <> u.location)
                                OR NOT EXISTS (
                                    SELECT 1 FROM sites AS st
                                      JOIN pings AS p ON p.site_id = st.id
                                     WHERE st.id = u.site_id AND p.status = 'down'
                                       -- (the first bound only lets old partitions be skipped)
                                       AND p.checked_at > u.first_at - interval '48 hours'
                                       AND p.checked_at > u.first_at
                                           - 2 * coalesce(st.interval_ms, default_interval_ms)
                                             * interval '1 millisecond'))
                           AS quiet
                      FROM unnest(sites_in, locations_in, firsts, lasts, all_up)
                           WITH ORDINALITY AS u (site_id, location, first_at, last_at, all_up, ord)
                   ) AS b
           ) AS z
     WHERE NOT z.site_quiet;
    PERFORM set_config('plan_cache_mode', plans, true);
    IF rest.sites_in IS NULL THEN
        RETURN;  -- nothing can change
    END IF;
    RETURN QUERY
        SELECT t.kind, t.site_id, t.location, t.at, t.incident_id, t.started_at, t.resolved_at,
               t.category, t.message
          FROM uptimelab_track_incidents(rest.sites_in, rest.locations_in, rest.firsts,
                                         rest.lasts, rest.all_up, default_interval_ms, quorum,
                                         flap_changes, flap_window_ms) AS t;
END;
$$;
