-- uptimelab schema, version 12: notifications, one row per transition per channel.
-- Never edit an applied file: add a new numbered file instead.
--
-- A row is written BEFORE its message is sent, and (key, channel) is unique: a transition is
-- recorded once, however many collectors or replays report it, and delivered at least once
-- (a receiver sees a repeat only after a crash between sending and marking it sent).
--   key            the transition's stable id (uptimelab.domain.incidents.Transition.key)
--   channel        the apprise URL redacted, with a fingerprint of the whole URL (never a token)
--   incident_id    the incident (sql/011_incidents.sql); no foreign key: a replay that rewrites
--                  an incident must not take the record of what people were told with it
--   kind, sequence, location, transition_at, started_at, category, first_error  the transition
--   title, body, message_type  the message as sent (made when recorded)
--   status         pending (to send; next_attempt_at says when), sent, expired (older than
--                  NOTIFY_MAX_AGE_MS: recorded, not sent), suppressed (a maintenance window),
--                  collapsed (into the flapping notice), failed (no configured channel matches
--                  any more, or apprise does not know the URL)
--   attempts, error  sends tried, and the last failure's one line
CREATE TABLE IF NOT EXISTS notifications (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key             text        NOT NULL CHECK (length(key) <= 300),
    channel         text        NOT NULL CHECK (length(channel) <= 300),
    site_id         uuid        NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    incident_id     bigint,
    kind            text        NOT NULL CHECK (kind IN ('down', 'recovered', 'flapping', 'stable',
                                                         'resend', 'cert_expiring')),
    sequence        integer     NOT NULL DEFAULT 0 CHECK (sequence >= 0),
    location        text,
    transition_at   timestamptz NOT NULL,
    started_at      timestamptz,
    category        text,
    first_error     text        CHECK (length(first_error) <= 1000),
    title           text        NOT NULL CHECK (length(title) <= 500),
    body            text        NOT NULL CHECK (length(body) <= 4000),
    message_type    text        NOT NULL CHECK (message_type IN ('info', 'success', 'warning',
                                                                 'failure')),
    status          text        NOT NULL CHECK (status IN ('pending', 'sent', 'expired',
                                                           'suppressed', 'collapsed', 'failed')),
    attempts        integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    error           text        CHECK (length(error) <= 1000),
    UNIQUE (key, channel)
);
-- The next message of each channel, in order (delivery is in order per channel).
CREATE INDEX IF NOT EXISTS notifications_pending_idx
    ON notifications (channel, id) WHERE status = 'pending';
-- An open incident's last notice (the reminders of NOTIFY_RESEND_MS), a site's history.
CREATE INDEX IF NOT EXISTS notifications_incident_idx
    ON notifications (incident_id) WHERE incident_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS notifications_site_idx ON notifications (site_id, transition_at);
