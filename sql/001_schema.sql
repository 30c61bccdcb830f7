-- uptimelab schema, version 1: sites, pings (daily range partitions), cycles, site_stats.
-- Applied once by `uptimelab db init` inside one transaction; never edit an applied file:
-- add a new numbered file instead (the checksum in schema_migrations would no longer match).

CREATE TABLE IF NOT EXISTS sites (
    id               uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    name             text,
    url              text        NOT NULL UNIQUE CHECK (length(url) <= 2048),
    is_active        boolean     NOT NULL DEFAULT true,
    method           text        NOT NULL DEFAULT 'GET'
                                 CHECK (method IN ('GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS')),
    expected_status  text        NOT NULL DEFAULT '200-399',
    follow_redirects boolean     NOT NULL DEFAULT true,
    max_redirects    integer     NOT NULL DEFAULT 5 CHECK (max_redirects BETWEEN 0 AND 50),
    timeout_ms       integer     CHECK (timeout_ms > 0),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- One row per ping. No surrogate id: a ping is identified by its site, time and location, which
-- is also what makes a replayed ping a no-op instead of a duplicate.
CREATE TABLE IF NOT EXISTS pings (
    site_id          uuid        NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    checked_at       timestamptz NOT NULL,
    status           text        NOT NULL CHECK (status IN ('up', 'down')),
    status_code      integer,
    response_time_ms integer     CHECK (response_time_ms >= 0),
    error_category   text        CHECK (error_category IN ('dns', 'refused', 'timeout', 'tls',
                                     'network', 'protocol', 'http_status', 'too_many_redirects')),
    error_message    text        CHECK (length(error_message) <= 500),
    location         text        NOT NULL,
    region_code      text        NOT NULL,
    PRIMARY KEY (site_id, checked_at, location),
    CHECK ((status = 'up') = (error_category IS NULL))
) PARTITION BY RANGE (checked_at);

-- Catches any row no daily partition covers (a history import, a plain INSERT far in the past or
-- future); uptimelab_ensure_pings_partition() moves such rows out when it creates their day.
CREATE TABLE IF NOT EXISTS pings_default PARTITION OF pings DEFAULT;

CREATE TABLE IF NOT EXISTS monitoring_cycles (
    id            uuid        PRIMARY KEY,
    started_at    timestamptz NOT NULL,
    finished_at   timestamptz,
    location      text        NOT NULL,
    region_code   text        NOT NULL,
    sites_checked integer     NOT NULL DEFAULT 0,
    up            integer     NOT NULL DEFAULT 0,
    down          integer     NOT NULL DEFAULT 0,
    duration_ms   integer,
    dry_run       boolean     NOT NULL DEFAULT false,
    error         text
);
CREATE INDEX IF NOT EXISTS monitoring_cycles_started_at_idx ON monitoring_cycles (started_at);

-- The seed's table, column for column, plus UNIQUE (site_id) so that it can be upserted.
CREATE TABLE IF NOT EXISTS site_stats (
    id                    uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    site_id               uuid        NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    uptime_1h             real        NOT NULL DEFAULT 0,
    uptime_24h            real        NOT NULL DEFAULT 0,
    uptime_7d             real        NOT NULL DEFAULT 0,
    avg_response_time_1h  integer     NOT NULL DEFAULT 0,
    avg_response_time_24h integer     NOT NULL DEFAULT 0,
    avg_response_time_7d  integer     NOT NULL DEFAULT 0,
    current_status        text        NOT NULL DEFAULT 'down',
    last_checked          timestamptz NOT NULL,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT site_stats_site_id_key UNIQUE (site_id)
);
