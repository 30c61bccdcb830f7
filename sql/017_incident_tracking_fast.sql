-- uptimelab schema, version 17: incident tracking's common case made cheap.
-- Never edit an applied file: add a new numbered file instead.
--
-- uptimelab_track_incidents (sql/011_incidents.sql) judges every series of a batch in statements
-- built for the busy case (temporary tables, the incident_series upsert, three correlated
-- subqueries per site): about 70 us a ping even when every series is all up, the common case.
-- uptimelab_track_incidents_fast takes the same arguments and returns the same rows. It first
-- sets aside, in one set-based statement, the sites in which nothing can change: those that
-- 011 would neither recompute nor judge for flapping, namely a site
--   - whose pings in the batch are all up and from one location,
--   - that one location already being the only one incident_series holds for it (no verdict of
--     the quorum to keep, no location first seen),
--   - with no incident (of any of its series) lasting to or past its earliest ping in the batch,
--   - and not flapping.
-- Only the other sites go through uptimelab_track_incidents; when there are none, it returns at
-- once. For such a site, 011 adds nothing to incident_series (the row is there), takes no lock
-- (one location) and skips it in its loop: so the tables and the rows returned are the same.
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
    -- One generic plan from the first call: a custom plan would be made for each of the first
    -- five with the arrays as constants, and planning with 10 000-element constants costs more
    -- than the statement.
    PERFORM set_config('plan_cache_mode', 'force_generic_plan', true);
    -- Series by series (index probes, no join between the batch's sets: an unnest of a
    -- parameter is estimated at a few rows, and a join of two such sets planned as nested
    -- loops is quadratic), then site by site: a site is set aside when all its series are.
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
                           AND NOT EXISTS (SELECT 1 FROM incident_series AS x
                                            WHERE x.site_id = u.site_id
                                              AND x.location <> u.location)
                           AND NOT EXISTS (SELECT 1 FROM incidents AS x
                                            WHERE x.site_id = u.site_id
                                              AND (x.resolved_at IS NULL
                                                   OR x.resolved_at >= u.first_at))
                           AND NOT EXISTS (SELECT 1 FROM incident_flapping AS f
                                            WHERE f.site_id = u.site_id AND f.ended_at IS NULL)
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
