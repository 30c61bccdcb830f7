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
