-- uptimelab schema, version 7: a site may skip certificate verification.
-- Never edit an applied file: add a new numbered file instead.
--
-- tls_verify: true (the default) checks the server's certificate against the trusted CAs; false
-- accepts any certificate (self-signed, expired, another name). It weakens the check, so
-- `sites list` and `uptimelab status` show the sites that have it false.

ALTER TABLE sites ADD COLUMN IF NOT EXISTS tls_verify boolean NOT NULL DEFAULT true;
