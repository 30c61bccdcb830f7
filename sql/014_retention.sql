-- uptimelab schema, version 14: retention. Old daily partitions of pings leave the database
-- whole (DETACH PARTITION, then DROP TABLE; never DELETE), after their rows were written to a
-- Parquet archive and the file verified against the partition, or dropped unarchived when asked.
-- Never edit an applied file: add a new numbered file instead.
--
-- One row per pruned UTC day, written in the transaction that drops the day's partition: a day
-- is either still in pings, or recorded here as gone (with the file that holds it, if any).
-- A prune killed before that commit left the partition in place; run again, it verifies the
-- file it finds (or writes it again) and drops then. The hourly rollup of a pruned day stays.
CREATE TABLE IF NOT EXISTS pings_pruned_days (
    day          date        NOT NULL,
    part         integer     NOT NULL CHECK (part >= 0),
    -- The archive file, relative to the archive directory; NULL when dropped unarchived.
    archive_file text,
    pings        bigint      NOT NULL CHECK (pings >= 0),
    -- Sum over the day's pings of the first 60 bits of md5(site_id|checked_at in µs|location):
    -- what the file was checked against (see uptimelab/storage/archive.py); NULL unarchived.
    key_checksum numeric,
    pruned_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (day, part)
);

-- The key checksum of a set of pings (the same definition as the archive's reader computes).
CREATE OR REPLACE FUNCTION uptimelab_ping_key_hash(site_id uuid, checked_at timestamptz, location text)
RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT ('x' || left(md5(site_id::text || '|'
                            || (extract(epoch FROM checked_at) * 1000000)::bigint::text || '|'
                            || location), 15))::bit(60)::bigint
$$;

-- The daily partitions of pings and their UTC days (pings_YYYYMMDD, made by
-- uptimelab_ensure_pings_partition), oldest first.
CREATE OR REPLACE FUNCTION uptimelab_pings_partitions()
RETURNS TABLE (day date, partition_name text)
LANGUAGE sql STABLE AS $$
    SELECT to_date(substr(c.relname, 7), 'YYYYMMDD'), c.relname::text
      FROM pg_inherits i
      JOIN pg_class c ON c.oid = i.inhrelid
     WHERE i.inhparent = 'pings'::regclass AND c.relname ~ '^pings_[0-9]{8}$'
     ORDER BY 1
$$;
