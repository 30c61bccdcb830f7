-- uptimelab schema, version 8: probe depth. Phase timings and the certificate's expiry per ping,
-- the latest expiry per site in site_stats, and how many days ahead an expiry is a warning.
-- Never edit an applied file: add a new numbered file instead.
--
-- The phases, in milliseconds, NULL where a phase did not happen (no DNS for an IP address or
-- in the httpx engine, no TLS for plain HTTP) or did not end (the ping failed in it):
--   dns_ms       name resolution
--   connect_ms   the TCP connect
--   tls_ms       the TLS handshake
--   ttfb_ms      from sending the request to the first byte of the response
--   transfer_ms  from the first byte to the end of what was read
-- Over redirects, each phase is the sum over the hops. response_time_ms is the whole ping, from
-- the start of the connection: the sum of its phases within a millisecond or two.
-- cert_expires_at: the expiry of the server's certificate, for an HTTPS ping whose handshake
-- succeeded (over redirects, the earliest of the hops').

ALTER TABLE pings
    ADD COLUMN IF NOT EXISTS dns_ms          integer CHECK (dns_ms >= 0),
    ADD COLUMN IF NOT EXISTS connect_ms      integer CHECK (connect_ms >= 0),
    ADD COLUMN IF NOT EXISTS tls_ms          integer CHECK (tls_ms >= 0),
    ADD COLUMN IF NOT EXISTS ttfb_ms         integer CHECK (ttfb_ms >= 0),
    ADD COLUMN IF NOT EXISTS transfer_ms     integer CHECK (transfer_ms >= 0),
    ADD COLUMN IF NOT EXISTS cert_expires_at timestamptz;

-- The latest ping with a certificate, per site, found without reading the plain-HTTP ones.
CREATE INDEX IF NOT EXISTS pings_cert_idx ON pings (site_id, checked_at)
    WHERE cert_expires_at IS NOT NULL;

-- A certificate expiring in fewer days than this is a warning (not downtime).
ALTER TABLE sites
    ADD COLUMN IF NOT EXISTS cert_min_days integer NOT NULL DEFAULT 14 CHECK (cert_min_days >= 0);

-- The latest non-null cert_expires_at of the site's pings at or before the refresh time.
ALTER TABLE site_stats ADD COLUMN IF NOT EXISTS cert_expires_at timestamptz;

-- The refresh of sql/003_stats.sql, the same in every other column, with cert_expires_at.
CREATE OR REPLACE FUNCTION uptimelab_refresh_site_stats(
    t timestamptz DEFAULT now(), only_sites uuid[] DEFAULT NULL
) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    written integer;
BEGIN
    PERFORM uptimelab_advance_rollup(now());
    WITH fresh AS (
        SELECT f.*, c.cert_expires_at
          FROM uptimelab_site_stats_at(t, only_sites) AS f
          LEFT JOIN LATERAL (
               SELECT p.cert_expires_at FROM pings AS p
                WHERE p.site_id = f.site_id AND p.checked_at <= t
                  AND p.cert_expires_at IS NOT NULL
                ORDER BY p.checked_at DESC, p.location COLLATE "C" DESC LIMIT 1) AS c ON true
    ),
    gone AS (
        DELETE FROM site_stats AS ss
         WHERE (only_sites IS NULL OR ss.site_id = ANY (only_sites))
           AND NOT EXISTS (SELECT 1 FROM fresh WHERE fresh.site_id = ss.site_id)
    ),
    upserted AS (
        INSERT INTO site_stats AS ss (
            site_id, uptime_1h, uptime_24h, uptime_7d,
            avg_response_time_1h, avg_response_time_24h, avg_response_time_7d,
            pings_1h, pings_24h, pings_7d, current_status, last_checked, cert_expires_at)
        SELECT f.site_id, f.uptime_1h, f.uptime_24h, f.uptime_7d,
               f.avg_response_time_1h, f.avg_response_time_24h, f.avg_response_time_7d,
               f.pings_1h, f.pings_24h, f.pings_7d, f.current_status, f.last_checked,
               f.cert_expires_at
          FROM fresh AS f
        ON CONFLICT (site_id) DO UPDATE SET
            uptime_1h = EXCLUDED.uptime_1h, uptime_24h = EXCLUDED.uptime_24h,
            uptime_7d = EXCLUDED.uptime_7d,
            avg_response_time_1h = EXCLUDED.avg_response_time_1h,
            avg_response_time_24h = EXCLUDED.avg_response_time_24h,
            avg_response_time_7d = EXCLUDED.avg_response_time_7d,
            pings_1h = EXCLUDED.pings_1h, pings_24h = EXCLUDED.pings_24h,
            pings_7d = EXCLUDED.pings_7d,
            current_status = EXCLUDED.current_status, last_checked = EXCLUDED.last_checked,
            cert_expires_at = EXCLUDED.cert_expires_at,
            updated_at = now()
        RETURNING 1
    )
    SELECT count(*)::integer INTO written FROM upserted;
    RETURN written;
END;
$$;

-- Percentiles of each phase per site over the up pings of a window (since, until], continuous
-- (percentile_cont, as pandas' default linear quantile); NULL where no ping had the phase.
CREATE OR REPLACE FUNCTION uptimelab_phase_percentiles(
    since timestamptz, until timestamptz DEFAULT now(), q float8 DEFAULT 0.5
) RETURNS TABLE (site_id uuid, phase text, pings integer, value_ms float8)
LANGUAGE sql STABLE AS $$
    SELECT p.site_id, x.phase, count(x.ms)::integer,
           percentile_cont(q) WITHIN GROUP (ORDER BY x.ms)
      FROM pings AS p
     CROSS JOIN LATERAL (VALUES ('dns', p.dns_ms), ('connect', p.connect_ms),
                                ('tls', p.tls_ms), ('ttfb', p.ttfb_ms),
                                ('transfer', p.transfer_ms)) AS x (phase, ms)
     WHERE p.checked_at > since AND p.checked_at <= until AND p.status = 'up'
       AND x.ms IS NOT NULL
     GROUP BY p.site_id, x.phase
$$;
