-- uptimelab schema, version 4: the database's identity.
-- A random id written once, so that local state (the spool of pings not stored yet, the site
-- cache, the collector's published state) is kept per database and never replayed into, probed
-- for or reported as another one. Never edit an applied file: add a new numbered file instead.

CREATE TABLE IF NOT EXISTS uptimelab_identity (
    singleton  boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    id         uuid        NOT NULL DEFAULT gen_random_uuid(),
    created_at timestamptz NOT NULL DEFAULT now()
);

INSERT INTO uptimelab_identity DEFAULT VALUES ON CONFLICT DO NOTHING;
