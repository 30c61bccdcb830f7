-- uptimelab schema, version 5: per-site cadence, and many collectors sharing one database.
-- Never edit an applied file: add a new numbered file instead.

-- A site may ask for its own interval (NULL: MONITORING_INTERVAL_MS) and for a shorter one while
-- it is down (NULL: its interval). The lower bound of the setting MIN_SITE_INTERVAL_MS is checked
-- where a site is added; the table only keeps the values sane.
ALTER TABLE sites ADD COLUMN IF NOT EXISTS interval_ms integer
    CHECK (interval_ms BETWEEN 1000 AND 86400000);
ALTER TABLE sites ADD COLUMN IF NOT EXISTS retry_interval_ms integer
    CHECK (retry_interval_ms BETWEEN 1000 AND 86400000);

-- Every collector process, alive or gone: `status` lists them, `health` is degraded when one's
-- heartbeat is stale.
CREATE TABLE IF NOT EXISTS collectors (
    id           uuid        PRIMARY KEY,
    host         text        NOT NULL,
    pid          integer     NOT NULL,
    location     text        NOT NULL,
    region_code  text        NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now(),
    stopped_at   timestamptz,
    sites_owned  integer     NOT NULL DEFAULT 0,
    late_ms      integer     NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS collectors_location_idx ON collectors (location, heartbeat_at);

-- The fleet of a location is cut into buckets (a site's bucket is a hash of its id); a collector
-- leases buckets and probes the sites in them. A lease that is not renewed expires, and another
-- collector of the location takes the bucket over. Leases are taken with FOR UPDATE SKIP LOCKED,
-- so collectors never wait on each other.
CREATE TABLE IF NOT EXISTS collector_leases (
    location     text        NOT NULL,
    bucket       integer     NOT NULL,
    collector_id uuid,
    expires_at   timestamptz NOT NULL DEFAULT '-infinity',
    PRIMARY KEY (location, bucket)
);

-- A collector on its schedule records one row per round of the default interval: the distinct
-- sites it checked, up, down, and how late its latest ping was against its due time.
ALTER TABLE monitoring_cycles ADD COLUMN IF NOT EXISTS collector_id uuid;
ALTER TABLE monitoring_cycles ADD COLUMN IF NOT EXISTS late_ms integer;

-- The bucket of a site: stable across processes, machines and versions of uptimelab (the first
-- 32 bits of its uuid, which gen_random_uuid() fills at random).
CREATE OR REPLACE FUNCTION uptimelab_site_bucket(site uuid, buckets integer) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (('x' || substr(site::text, 1, 8))::bit(32)::bigint % buckets)::integer
$$;

-- The latest ping of each site from one location since a time: what the scheduler reads to
-- learn about probes made elsewhere (a trigger, another collector before a hand-over).
CREATE INDEX IF NOT EXISTS pings_location_checked_at_idx ON pings (location, checked_at);

-- One heartbeat of a collector, in one round trip: note that it lives, renew its leases, give
-- back what is above its fair share (ceil(buckets / live collectors of the location)), take free
-- or expired buckets up to that share. Returns the buckets it holds afterwards. A bucket given
-- back can be taken only after grace_ms: time for the probes still in flight in the collector
-- that gave it back to end and be stored, so that the next one sees them and does not probe the
-- sites again too soon.
CREATE OR REPLACE FUNCTION uptimelab_heartbeat(
    me uuid, where_ text, region text, host_ text, pid_ integer,
    lease_ms integer, buckets integer, owned_sites integer, late integer, grace_ms integer
) RETURNS integer[]
LANGUAGE plpgsql AS $$
DECLARE
    live integer;
    fair integer;
    held integer[];
BEGIN
    INSERT INTO collectors (id, host, pid, location, region_code, sites_owned, late_ms)
    VALUES (me, host_, pid_, where_, region, owned_sites, late)
    ON CONFLICT (id) DO UPDATE
        SET heartbeat_at = now(), stopped_at = NULL, sites_owned = owned_sites, late_ms = late;
    INSERT INTO collector_leases (location, bucket)
    SELECT where_, b FROM generate_series(0, buckets - 1) AS b
    ON CONFLICT DO NOTHING;
    SELECT count(*) INTO live FROM collectors
     WHERE location = where_ AND stopped_at IS NULL
       AND heartbeat_at > now() - make_interval(secs => lease_ms / 1000.0);
    fair := ceil(buckets::numeric / greatest(live, 1));
    UPDATE collector_leases SET expires_at = now() + make_interval(secs => lease_ms / 1000.0)
     WHERE location = where_ AND collector_id = me;
    -- Above the fair share (a collector joined): give back the highest buckets.
    UPDATE collector_leases
       SET collector_id = NULL, expires_at = now() + make_interval(secs => grace_ms / 1000.0)
     WHERE location = where_ AND collector_id = me AND bucket IN (
           SELECT bucket FROM collector_leases WHERE location = where_ AND collector_id = me
            ORDER BY bucket DESC
           OFFSET fair);
    -- Below it: take free or expired buckets, never waiting on another collector's claim.
    UPDATE collector_leases l
       SET collector_id = me, expires_at = now() + make_interval(secs => lease_ms / 1000.0)
      FROM (SELECT bucket FROM collector_leases
             WHERE location = where_ AND bucket < buckets
               AND expires_at < now()
             ORDER BY bucket
             LIMIT greatest(fair - (SELECT count(*) FROM collector_leases
                                     WHERE location = where_ AND collector_id = me), 0)
             FOR UPDATE SKIP LOCKED) AS free
     WHERE l.location = where_ AND l.bucket = free.bucket;
    SELECT coalesce(array_agg(bucket ORDER BY bucket), '{}') INTO held
      FROM collector_leases WHERE location = where_ AND collector_id = me AND bucket < buckets;
    RETURN held;
END
$$;

-- A collector that stops gives its buckets back at once and says so.
CREATE OR REPLACE FUNCTION uptimelab_collector_stopped(me uuid) RETURNS void
LANGUAGE sql AS $$
    UPDATE collector_leases SET collector_id = NULL, expires_at = '-infinity' WHERE collector_id = me;
    UPDATE collectors SET stopped_at = now(), sites_owned = 0 WHERE id = me;
$$;
