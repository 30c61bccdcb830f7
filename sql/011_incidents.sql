-- uptimelab schema, version 11: incidents (a site's confirmed outages), flapping, the per-site
-- confirmation counts and notification URLs, and maintenance windows.
-- Never edit an applied file: add a new numbered file instead.
--
-- Per site:
--   down_after  consecutive down pings of one location that make it down (confirm an incident)
--   up_after    consecutive up pings that make it up again (resolve the incident)
--   notify      apprise URLs told of this site's transitions, beside the global NOTIFY_URLS
--               (NULL: none of its own); they carry tokens and are redacted wherever shown

ALTER TABLE sites
    ADD COLUMN IF NOT EXISTS down_after integer NOT NULL DEFAULT 2
                                         CHECK (down_after BETWEEN 1 AND 1000),
    ADD COLUMN IF NOT EXISTS up_after   integer NOT NULL DEFAULT 1
                                         CHECK (up_after BETWEEN 1 AND 1000),
    ADD COLUMN IF NOT EXISTS notify     text[]
                                         CHECK (cardinality(notify) BETWEEN 1 AND 20);

-- One row per incident of a site at one location, or of the quorum verdict (location NULL, kept
-- only for a site that two or more locations report). The series of a location is its pings,
-- ordered by checked_at; the series of the quorum verdict is the verdict at each instant a
-- location pinged the site (sql/006_quorum.sql). In a series, a state machine that starts up:
-- down_after consecutive down samples make it down, up_after consecutive up samples make it up.
--   started_at    the first down sample of the run that became the incident
--   confirmed_at  the down_after-th consecutive down sample (the state became down)
--   resolved_at   the first up sample of the up_after that made it up (NULL while it lasts)
--   category, message  the first down sample's error category and message (for the quorum
--                 verdict: those of the latest down ping of the site at or before started_at)
--   down_pings    the down samples from started_at up to resolved_at (or the latest sample)
-- uptimelab.analytics.outages(pings, down_after=, up_after=, by_location=True) is the same.
CREATE TABLE IF NOT EXISTS incidents (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    site_id      uuid        NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    location     text,
    started_at   timestamptz NOT NULL,
    confirmed_at timestamptz NOT NULL,
    resolved_at  timestamptz,
    category     text,
    message      text,
    down_pings   integer     NOT NULL CHECK (down_pings >= 1),
    CHECK (confirmed_at >= started_at),
    CHECK (resolved_at IS NULL OR resolved_at > confirmed_at)
);
-- The incidents of one series in time order (the recomputation's hint and range), and the open
-- ones (`uptimelab incidents --open`).
CREATE INDEX IF NOT EXISTS incidents_series_idx
    ON incidents (site_id, (coalesce(location, '')), started_at);
CREATE INDEX IF NOT EXISTS incidents_started_at_idx ON incidents (started_at);
CREATE INDEX IF NOT EXISTS incidents_open_idx ON incidents (site_id) WHERE resolved_at IS NULL;

-- Periods a site's own state (the quorum verdict's incidents where two or more locations report,
-- else its one location's) flapped: more than FLAP_CHANGES changes of state within
-- FLAP_WINDOW_MS. It ends (ended_at) once a whole window has passed without a change.
CREATE TABLE IF NOT EXISTS incident_flapping (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    site_id    uuid        NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    started_at timestamptz NOT NULL,
    ended_at   timestamptz,
    CHECK (ended_at IS NULL OR ended_at > started_at)
);
CREATE UNIQUE INDEX IF NOT EXISTS incident_flapping_open_idx
    ON incident_flapping (site_id) WHERE ended_at IS NULL;

-- Maintenance windows, of one site or (site_id NULL) of all. A one-off window (cron NULL) is
-- [starts_at, ends_at). A recurring one opens at each time its cron expression (five fields,
-- UTC) names, at or after starts_at, for duration_ms, and opens no more at or after ends_at
-- (NULL: never ends). During a window pings are still taken and stored and incidents recorded;
-- notifications are suppressed, and stats may leave its pings out.
CREATE TABLE IF NOT EXISTS maintenance (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    site_id     uuid        REFERENCES sites (id) ON DELETE CASCADE,
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz,
    cron        text        CHECK (length(cron) <= 200),
    duration_ms bigint      CHECK (duration_ms > 0 AND duration_ms <= 31 * 86400000::bigint),
    reason      text        CHECK (length(reason) <= 500),
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (ends_at IS NULL OR ends_at > starts_at),
    CHECK ((cron IS NULL AND duration_ms IS NULL AND ends_at IS NOT NULL)
           OR (cron IS NOT NULL AND duration_ms IS NOT NULL))
);
CREATE INDEX IF NOT EXISTS maintenance_site_idx ON maintenance (site_id);

-- The locations that have reported each site (kept as pings are stored): a site with two or
-- more has incidents of its quorum verdict too.
CREATE TABLE IF NOT EXISTS incident_series (
    site_id  uuid NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    location text NOT NULL,
    PRIMARY KEY (site_id, location)
);
INSERT INTO incident_series (site_id, location)
SELECT DISTINCT site_id, location FROM pings ON CONFLICT DO NOTHING;

-- The samples of one series in (since, until], in time order: a location's pings, or (loc NULL)
-- the quorum verdict at each instant a location pinged the site, with the category and message
-- of the latest down ping of the site at or before that instant (within two intervals).
CREATE OR REPLACE FUNCTION uptimelab_incident_samples(
    site uuid, loc text, since timestamptz, until timestamptz,
    default_interval_ms integer, quorum integer DEFAULT NULL
) RETURNS TABLE (at timestamptz, down boolean, category text, message text)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_variable
BEGIN
    IF loc IS NOT NULL THEN
        RETURN QUERY
            SELECT p.checked_at, p.status = 'down', p.error_category, p.error_message
              FROM pings AS p
             WHERE p.site_id = site AND p.location = loc
               AND p.checked_at > since AND p.checked_at <= until
             ORDER BY p.checked_at;
        RETURN;
    END IF;
    -- The sweep of uptimelab_quorum_sweep (sql/006_quorum.sql) for one site, written out here:
    -- a SQL function is planned again at each call, a plpgsql query once per session.
    RETURN QUERY
        WITH reach AS (
            SELECT 2 * coalesce(st.interval_ms, default_interval_ms) * interval '1 millisecond'
                   AS span
              FROM sites AS st WHERE st.id = site
        ),
        held AS (
            SELECT p.checked_at, (p.status = 'down')::integer AS d,
                   least(lead(p.checked_at) OVER (PARTITION BY p.location ORDER BY p.checked_at),
                         p.checked_at + r.span) AS ends_at
              FROM reach AS r
              JOIN pings AS p ON p.site_id = site
             WHERE p.checked_at > since - interval '48 hours'
               AND p.checked_at > since - r.span AND p.checked_at <= until
        ),
        changes AS (
            SELECT h.checked_at AS t, 1 AS n, h.d, true AS pinged FROM held AS h
            UNION ALL
            SELECT h.ends_at, -1, -h.d, false FROM held AS h WHERE h.ends_at <= until
        ),
        summed AS (
            SELECT c.t, bool_or(c.pinged) AS pinged, sum(c.n) AS n, sum(c.d) AS d
              FROM changes AS c GROUP BY c.t
        ),
        swept AS (
            SELECT m.t, m.pinged, sum(m.n) OVER running AS n, sum(m.d) OVER running AS d
              FROM summed AS m
            WINDOW running AS (ORDER BY m.t ROWS UNBOUNDED PRECEDING)
        ),
        verdicts AS (
            SELECT w.t, uptimelab_quorum_down(w.n::bigint, w.d::bigint, quorum) AS is_down
              FROM swept AS w
             WHERE w.pinged AND w.t > since
        )
        SELECT v.t, v.is_down, c.error_category, c.error_message
          FROM verdicts AS v
          LEFT JOIN LATERAL (
               SELECT p.error_category, p.error_message FROM pings AS p, reach AS r
                WHERE v.is_down AND p.site_id = site
                  AND p.status = 'down' AND p.checked_at <= v.t AND p.checked_at > v.t - r.span
                ORDER BY p.checked_at DESC, p.location COLLATE "C" LIMIT 1) AS c ON true
         ORDER BY v.t;
END;
$$;

-- Recompute the incidents of one series from a point before ``since`` (the earliest sample that
-- a batch added or changed) to its end, and put the table right: an incident found again keeps
-- its id (matched by overlapping time), one no longer found is deleted, a new one inserted.
-- Idempotent: the same pings always give the same rows, however late or often they came.
--
-- The restart point. After up_after consecutive up samples the machine is up whatever came
-- before, so the latest such run before ``since`` is a safe start (searched backwards in
-- growing spans, never past the latest earlier incident's resolved_at). Without one, the start
-- of the latest incident that started before ``since`` (just before it, the state was up), else
-- the beginning. What the table holds before the restart point cannot change.
--
-- Returns the changes: 'down' (an incident inserted; at = confirmed_at) and 'recovered' (an
-- incident resolved that was not, or inserted resolved; at = resolved_at).
CREATE OR REPLACE FUNCTION uptimelab_recompute_incidents(
    site uuid, loc text, since timestamptz, down_after integer, up_after integer,
    default_interval_ms integer, quorum integer DEFAULT NULL
) RETURNS TABLE (kind text, incident_id bigint, at timestamptz, started_at timestamptz,
                 resolved_at timestamptz, category text, message text)
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
    hint       record;
    floor_at   timestamptz := '-infinity';
    lo         timestamptz;
    span       interval;
    run        integer;
    cand       timestamptz;
    found_at   timestamptz;
    r          record;
    e          record;
    -- the machine
    is_down    boolean := false;
    run_n      integer := 0;
    run_start  timestamptz;
    run_cat    text;
    run_msg    text;
    confirmed  timestamptz;
    downs      integer := 0;
    ups        integer := 0;
    up_start   timestamptz;
    -- the incidents found, in order
    n_starts   timestamptz[] := '{}';
    n_confs    timestamptz[] := '{}';
    n_ress     timestamptz[] := '{}';
    n_cats     text[] := '{}';
    n_msgs     text[] := '{}';
    n_downs    integer[] := '{}';
    i          integer := 1;
    n          integer;
    new_id     bigint;
    done       boolean;
    resumed    bigint;
BEGIN
    SELECT x.id, x.started_at, x.confirmed_at, x.resolved_at, x.category, x.message INTO hint
      FROM incidents AS x
     WHERE x.site_id = site AND coalesce(x.location, '') = coalesce(loc, '')
       AND x.started_at < since
     ORDER BY x.started_at DESC LIMIT 1;
    IF hint.id IS NOT NULL AND hint.resolved_at IS NULL AND loc IS NOT NULL THEN
        -- Inside a location's open incident, the machine is down with no up pending after
        -- each of its down pings: resume after the latest one before ``since`` rather than
        -- read the whole outage again.
        SELECT max(p.checked_at) INTO found_at FROM pings AS p
         WHERE p.site_id = site AND p.location = loc AND p.status = 'down'
           AND p.checked_at >= hint.confirmed_at AND p.checked_at < since;
    END IF;
    IF found_at IS NOT NULL THEN
        lo := found_at;
        resumed := hint.id;
        is_down := true;
        run_start := hint.started_at;
        confirmed := hint.confirmed_at;
        run_cat := hint.category;
        run_msg := hint.message;
        SELECT count(*) INTO downs FROM pings AS p
         WHERE p.site_id = site AND p.location = loc AND p.status = 'down'
           AND p.checked_at >= hint.started_at AND p.checked_at <= found_at;
    ELSIF hint.id IS NOT NULL AND (hint.resolved_at IS NULL OR hint.resolved_at >= since) THEN
        lo := hint.started_at - interval '1 microsecond';
    ELSE
        IF hint.id IS NOT NULL THEN
            floor_at := hint.resolved_at;
        ELSE
            -- no earlier incident: the search may go back to the series' first sample
            SELECT min(p.checked_at) INTO floor_at FROM pings AS p
             WHERE p.site_id = site AND (loc IS NULL OR p.location = loc);
            floor_at := coalesce(floor_at, since);
        END IF;
        SELECT (up_after + 2) * 2 * coalesce(s.interval_ms, default_interval_ms)
               * interval '1 millisecond' INTO span
          FROM sites AS s WHERE s.id = site;
        LOOP
            lo := greatest(floor_at - interval '1 microsecond', since - span);
            run := 0;
            cand := NULL;
            FOR r IN SELECT q.at, q.down
                       FROM uptimelab_incident_samples(site, loc, lo, since - interval '1 microsecond',
                                                       default_interval_ms, quorum) AS q
                      ORDER BY q.at DESC LOOP
                IF r.down THEN
                    run := 0;
                ELSE
                    run := run + 1;
                    IF run = 1 THEN
                        cand := r.at;
                    END IF;
                    IF run >= up_after THEN
                        found_at := cand;
                        EXIT;
                    END IF;
                END IF;
            END LOOP;
            EXIT WHEN found_at IS NOT NULL OR lo <= floor_at - interval '1 microsecond';
            span := span * 4;
        END LOOP;
        IF found_at IS NOT NULL THEN
            lo := found_at;
        ELSIF hint.id IS NOT NULL THEN
            lo := hint.started_at - interval '1 microsecond';
        ELSE
            lo := '-infinity';
        END IF;
    END IF;

    FOR r IN SELECT * FROM uptimelab_incident_samples(site, loc, lo, 'infinity',
                                                      default_interval_ms, quorum) LOOP
        IF NOT is_down THEN
            IF r.down THEN
                IF run_n = 0 THEN
                    run_start := r.at;
                    run_cat := r.category;
                    run_msg := r.message;
                END IF;
                run_n := run_n + 1;
                IF run_n >= down_after THEN
                    is_down := true;
                    confirmed := r.at;
                    downs := run_n;
                    ups := 0;
                END IF;
            ELSE
                run_n := 0;
            END IF;
        ELSIF r.down THEN
            downs := downs + 1;
            ups := 0;
        ELSE
            IF ups = 0 THEN
                up_start := r.at;
            END IF;
            ups := ups + 1;
            IF ups >= up_after THEN
                n_starts := n_starts || run_start;
                n_confs := n_confs || confirmed;
                n_ress := n_ress || up_start;
                n_cats := n_cats || run_cat;
                n_msgs := n_msgs || run_msg;
                n_downs := n_downs || downs;
                is_down := false;
                run_n := 0;
                ups := 0;
            END IF;
        END IF;
    END LOOP;
    IF is_down THEN
        n_starts := n_starts || run_start;
        n_confs := n_confs || confirmed;
        n_ress := n_ress || NULL::timestamptz;
        n_cats := n_cats || run_cat;
        n_msgs := n_msgs || run_msg;
        n_downs := n_downs || downs;
    END IF;
    n := cardinality(n_starts);

    -- Merge with the stored incidents after the restart point, both in time order.
    FOR e IN SELECT x.* FROM incidents AS x
              WHERE x.site_id = site AND coalesce(x.location, '') = coalesce(loc, '')
                AND (x.started_at > lo OR x.id = resumed)
              ORDER BY x.started_at FOR UPDATE LOOP
        done := false;
        WHILE NOT done LOOP
            IF i > n OR e.started_at < n_starts[i] AND coalesce(e.resolved_at, 'infinity') <= n_starts[i] THEN
                -- no longer an incident
                DELETE FROM incidents WHERE id = e.id;
                done := true;
            ELSIF n_starts[i] < coalesce(e.resolved_at, 'infinity')
                  AND e.started_at < coalesce(n_ress[i], 'infinity') THEN
                IF (e.started_at, e.confirmed_at, e.resolved_at, e.category, e.message, e.down_pings)
                   IS DISTINCT FROM (n_starts[i], n_confs[i], n_ress[i], n_cats[i], n_msgs[i], n_downs[i]) THEN
                    UPDATE incidents AS x
                       SET started_at = n_starts[i], confirmed_at = n_confs[i],
                           resolved_at = n_ress[i], category = n_cats[i], message = n_msgs[i],
                           down_pings = n_downs[i]
                     WHERE x.id = e.id;
                    IF e.resolved_at IS NULL AND n_ress[i] IS NOT NULL THEN
                        RETURN QUERY SELECT 'recovered', e.id, n_ress[i], n_starts[i], n_ress[i],
                                            n_cats[i], n_msgs[i];
                    END IF;
                END IF;
                i := i + 1;
                done := true;
            ELSE
                -- a new incident before this stored one
                INSERT INTO incidents AS x (site_id, location, started_at, confirmed_at,
                                            resolved_at, category, message, down_pings)
                VALUES (site, loc, n_starts[i], n_confs[i], n_ress[i], n_cats[i], n_msgs[i],
                        n_downs[i])
                RETURNING x.id INTO new_id;
                RETURN QUERY SELECT 'down', new_id, n_confs[i], n_starts[i], n_ress[i],
                                    n_cats[i], n_msgs[i];
                IF n_ress[i] IS NOT NULL THEN
                    RETURN QUERY SELECT 'recovered', new_id, n_ress[i], n_starts[i], n_ress[i],
                                        n_cats[i], n_msgs[i];
                END IF;
                i := i + 1;
            END IF;
        END LOOP;
    END LOOP;
    WHILE i <= n LOOP
        INSERT INTO incidents AS x (site_id, location, started_at, confirmed_at, resolved_at,
                                    category, message, down_pings)
        VALUES (site, loc, n_starts[i], n_confs[i], n_ress[i], n_cats[i], n_msgs[i], n_downs[i])
        RETURNING x.id INTO new_id;
        RETURN QUERY SELECT 'down', new_id, n_confs[i], n_starts[i], n_ress[i], n_cats[i],
                            n_msgs[i];
        IF n_ress[i] IS NOT NULL THEN
            RETURN QUERY SELECT 'recovered', new_id, n_ress[i], n_starts[i], n_ress[i],
                                n_cats[i], n_msgs[i];
        END IF;
        i := i + 1;
    END LOOP;
END;
$$;

-- What a stored batch of pings did to incidents. The batch is given as its series: for each
-- (site, location) the earliest and latest ping it holds and whether they were all up. Each
-- location's incidents are recomputed (skipped when its pings were all up and it has no incident
-- that lasts to or past them: then nothing can change), and the quorum verdict's for a site that
-- two or more locations report. Sites are taken in id order, each under a transaction advisory
-- lock: two collectors storing pings of one site at once recompute it one after the other.
--
-- Returns the transitions of each site's own state (location NULL): the quorum verdict's
-- incidents where two or more locations report, else its one location's; 'down' and
-- 'recovered' (see uptimelab_recompute_incidents), 'flapping' when more than flap_changes
-- changes of state (confirmations and resolutions) fall within flap_window_ms, and 'stable'
-- once a whole window has passed without one (at = the last change + the window); in time
-- order, a change before the 'flapping' it started. Its 'down' and 'recovered' while it flaps
-- are returned too: the notifier collapses them (incident_flapping has the open period).
CREATE OR REPLACE FUNCTION uptimelab_track_incidents(
    sites_in uuid[], locations_in text[], firsts timestamptz[], lasts timestamptz[],
    all_up boolean[], default_interval_ms integer, quorum integer DEFAULT NULL,
    flap_changes integer DEFAULT 6, flap_window_ms bigint DEFAULT 3600000
) RETURNS TABLE (kind text, site_id uuid, location text, at timestamptz, incident_id bigint,
                 started_at timestamptz, resolved_at timestamptz, category text, message text)
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
    s        record;
    i        integer;
    own      text;
    window_  interval := flap_window_ms * interval '1 millisecond';
    flap     record;
    changes  integer;
    last_at  timestamptz;
    state    text;
BEGIN
    CREATE TEMP TABLE IF NOT EXISTS uptimelab_transitions (
        kind text, site_id uuid, at timestamptz, incident_id bigint, started_at timestamptz,
        resolved_at timestamptz, category text, message text, own boolean
    ) ON COMMIT DELETE ROWS;
    DELETE FROM uptimelab_transitions;
    -- The batch's series (of sites that still exist), and the locations that report each site.
    CREATE TEMP TABLE IF NOT EXISTS uptimelab_batch_series (
        site_id uuid, location text, first_at timestamptz, last_at timestamptz, all_up boolean,
        fresh boolean
    ) ON COMMIT DELETE ROWS;
    DELETE FROM uptimelab_batch_series;
    INSERT INTO uptimelab_batch_series
    SELECT b.site_id, b.location, min(b.first_at), max(b.last_at), bool_and(b.all_up), false
      FROM unnest(sites_in, locations_in, firsts, lasts, all_up)
           AS b (site_id, location, first_at, last_at, all_up)
     WHERE EXISTS (SELECT 1 FROM sites AS st WHERE st.id = b.site_id)
     GROUP BY b.site_id, b.location;
    -- (fresh: a location first seen reporting the site)
    WITH added AS (
        INSERT INTO incident_series (site_id, location)
        SELECT b.site_id, b.location FROM uptimelab_batch_series AS b
        ON CONFLICT DO NOTHING
        RETURNING incident_series.site_id, incident_series.location
    )
    UPDATE uptimelab_batch_series AS b SET fresh = true
      FROM added AS a WHERE a.site_id = b.site_id AND a.location = b.location;
    -- Two collectors (two locations) storing pings of one site at once: the second to get here
    -- waits for the first to commit, so that it sees the other's pings when it judges the
    -- quorum verdict (else a verdict that needs both could be missed). 64 buckets by site, taken
    -- in order: few locks, whatever the batch's size.
    PERFORM pg_advisory_xact_lock(hashtextextended('uptimelab.incidents.bucket:' || q.bucket, 0))
       FROM (SELECT DISTINCT abs(hashtextextended(b.site_id::text, 0) % 64) AS bucket
               FROM uptimelab_batch_series AS b
              WHERE (SELECT count(*) FROM incident_series AS x WHERE x.site_id = b.site_id) >= 2
              ORDER BY 1) AS q;

    -- The sites with work: a series whose pings were not all up or that has an incident lasting
    -- to or past them (else nothing can change in it), the quorum verdict of a site that two or
    -- more locations report when it is down from the batch on or has such an incident, a site
    -- that flaps (it may have become stable).
    FOR s IN
        WITH series AS (
            SELECT b.*,
                   NOT b.all_up OR EXISTS (
                       SELECT 1 FROM incidents AS x
                        WHERE x.site_id = b.site_id AND x.location = b.location
                          AND (x.resolved_at IS NULL OR x.resolved_at >= b.first_at)) AS busy
              FROM uptimelab_batch_series AS b
        ),
        per_site AS (
            SELECT b.site_id, min(b.first_at) AS first_at, max(b.last_at) AS last_at,
                   count(*) FILTER (WHERE b.fresh) AS gained,
                   array_agg(b.location ORDER BY b.location) FILTER (WHERE b.busy) AS places,
                   array_agg(b.first_at ORDER BY b.location) FILTER (WHERE b.busy) AS place_firsts
              FROM series AS b
             GROUP BY b.site_id
        ),
        known AS (
            SELECT p.*, st.down_after, st.up_after,
                   (SELECT count(*) FROM incident_series AS x WHERE x.site_id = p.site_id) >= 2
                       AS several,
                   -- its second location came now: the verdict's series starts to be kept
                   (SELECT count(*) FROM incident_series AS x WHERE x.site_id = p.site_id)
                       - p.gained < 2 AS verdict_new,
                   (SELECT min(x.location) FROM incident_series AS x WHERE x.site_id = p.site_id)
                       AS only_location,
                   EXISTS (SELECT 1 FROM incident_flapping AS f
                            WHERE f.site_id = p.site_id AND f.ended_at IS NULL) AS flapping
              FROM per_site AS p JOIN sites AS st ON st.id = p.site_id
        ),
        -- The quorum verdicts from each such site's earliest new ping on, in one sweep: when
        -- they are all up and no incident of the verdict lasts to them, nothing can change.
        verdicts AS (
            SELECT v.site_id, bool_or(v.status = 'down') AS any_down
              FROM uptimelab_quorum_verdicts(
                       (SELECT min(k.first_at) FROM known AS k WHERE k.several)
                           - interval '1 microsecond',
                       'infinity', default_interval_ms, quorum,
                       coalesce((SELECT array_agg(k.site_id) FROM known AS k WHERE k.several),
                                '{}')) AS v
              JOIN known AS k ON k.site_id = v.site_id AND v.checked_at >= k.first_at
             GROUP BY v.site_id
        )
        SELECT k.*,
               k.several AND (k.verdict_new OR coalesce(v.any_down, false) OR EXISTS (
                   SELECT 1 FROM incidents AS x
                    WHERE x.site_id = k.site_id AND x.location IS NULL
                      AND (x.resolved_at IS NULL OR x.resolved_at >= k.first_at))) AS verdict_busy
          FROM known AS k LEFT JOIN verdicts AS v ON v.site_id = k.site_id
         WHERE k.places IS NOT NULL OR k.flapping
            OR k.several AND (k.verdict_new OR coalesce(v.any_down, false) OR EXISTS (
                   SELECT 1 FROM incidents AS x
                    WHERE x.site_id = k.site_id AND x.location IS NULL
                      AND (x.resolved_at IS NULL OR x.resolved_at >= k.first_at)))
         ORDER BY k.site_id
    LOOP
        PERFORM pg_advisory_xact_lock(hashtextextended('uptimelab.incidents:' || s.site_id::text, 0));
        own := CASE WHEN s.several THEN NULL ELSE s.only_location END;
        -- Each location's incidents are kept; their changes are the site's own only alone.
        FOR i IN 1 .. coalesce(cardinality(s.places), 0) LOOP
            INSERT INTO uptimelab_transitions
            SELECT c.kind, s.site_id, c.at, c.incident_id, c.started_at, c.resolved_at,
                   c.category, c.message, NOT s.several
              FROM uptimelab_recompute_incidents(s.site_id, s.places[i], s.place_firsts[i],
                                                 s.down_after, s.up_after,
                                                 default_interval_ms, quorum) AS c;
        END LOOP;
        IF s.verdict_busy THEN
            INSERT INTO uptimelab_transitions
            SELECT c.kind, s.site_id, c.at, c.incident_id, c.started_at, c.resolved_at,
                   c.category, c.message, true
              FROM uptimelab_recompute_incidents(s.site_id, NULL,
                                                 CASE WHEN s.verdict_new THEN '-infinity'
                                                      ELSE s.first_at END, s.down_after,
                                                 s.up_after, default_interval_ms, quorum) AS c;
        END IF;
        IF NOT s.flapping AND NOT EXISTS (
            SELECT 1 FROM uptimelab_transitions AS t WHERE t.site_id = s.site_id AND t.own) THEN
            CONTINUE;  -- no change of its own state, no flapping to end
        END IF;

        -- Flapping, judged at the batch's latest ping of the site.
        SELECT count(*) FILTER (WHERE v.changed_at > s.last_at - window_), max(v.changed_at)
          INTO changes, last_at
          FROM incidents AS x,
               LATERAL (VALUES (x.confirmed_at), (x.resolved_at)) AS v (changed_at)
         WHERE x.site_id = s.site_id AND x.location IS NOT DISTINCT FROM own
           AND (x.resolved_at IS NULL OR x.resolved_at > s.last_at - window_)
           AND v.changed_at <= s.last_at;
        SELECT * INTO flap FROM incident_flapping AS f
         WHERE f.site_id = s.site_id AND f.ended_at IS NULL;
        IF flap.id IS NULL AND changes > flap_changes THEN
            INSERT INTO incident_flapping AS f (site_id, started_at)
            VALUES (s.site_id, last_at) RETURNING f.* INTO flap;
            INSERT INTO uptimelab_transitions (kind, site_id, at, message, own)
            VALUES ('flapping', s.site_id, last_at,
                    format('more than %s changes of state within %s', flap_changes, window_),
                    true);
        ELSIF flap.id IS NOT NULL
              AND (last_at IS NULL OR last_at + window_ <= s.last_at) THEN
            UPDATE incident_flapping AS f
               SET ended_at = greatest(coalesce(last_at, flap.started_at), flap.started_at) + window_
             WHERE f.id = flap.id RETURNING f.* INTO flap;
            SELECT CASE WHEN EXISTS (
                       SELECT 1 FROM incidents AS x
                        WHERE x.site_id = s.site_id AND x.location IS NOT DISTINCT FROM own
                          AND x.resolved_at IS NULL) THEN 'down' ELSE 'up' END INTO state;
            INSERT INTO uptimelab_transitions (kind, site_id, at, message, own)
            VALUES ('stable', s.site_id, flap.ended_at, 'the site is ' || state, true);
        END IF;
    END LOOP;
    RETURN QUERY
        SELECT t.kind, t.site_id, NULL::text, t.at, t.incident_id, t.started_at, t.resolved_at,
               t.category, t.message
          FROM uptimelab_transitions AS t
         WHERE t.own
         ORDER BY t.at, t.site_id, t.kind IN ('flapping', 'stable'), t.kind;
END;
$$;

-- Every incident of some sites (NULL: all) recomputed from their first ping: after an import of
-- history, or pings written without the collector. Returns the rows now in the table.
CREATE OR REPLACE FUNCTION uptimelab_rebuild_incidents(
    default_interval_ms integer, quorum integer DEFAULT NULL, only_sites uuid[] DEFAULT NULL
) RETURNS bigint
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
    b record;
BEGIN
    INSERT INTO incident_series (site_id, location)
    SELECT DISTINCT p.site_id, p.location FROM pings AS p
     WHERE only_sites IS NULL OR p.site_id = ANY (only_sites)
    ON CONFLICT DO NOTHING;
    SELECT array_agg(x.site_id) AS sites_in, array_agg(x.location) AS locations_in
      INTO b
      FROM incident_series AS x
     WHERE only_sites IS NULL OR x.site_id = ANY (only_sites);
    IF b.sites_in IS NOT NULL THEN
        PERFORM uptimelab_track_incidents(
            b.sites_in, b.locations_in,
            array_fill('-infinity'::timestamptz, ARRAY[cardinality(b.sites_in)]),
            array_fill(now(), ARRAY[cardinality(b.sites_in)]),
            array_fill(false, ARRAY[cardinality(b.sites_in)]),
            default_interval_ms, quorum, 1000000, 3600000);
    END IF;
    RETURN (SELECT count(*) FROM incidents AS x
             WHERE only_sites IS NULL OR x.site_id = ANY (only_sites));
END;
$$;
