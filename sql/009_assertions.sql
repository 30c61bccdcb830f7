-- uptimelab schema, version 9: what the page says. A site's assertions and request options, and
-- the error category of a ping that fails one.
-- Never edit an applied file: add a new numbered file instead.
--
--   expect_body      a regular expression searched in the decoded body (its first 64 KiB)
--   expect_json      PATH OP VALUE or len(PATH) OP N, PATH a JSONPath selecting one value
--   max_response_ms  the slowest response (response_time_ms) that still counts as up
--   headers          request headers, a JSON object of names and text values (secret ones are
--                    redacted wherever shown)
--   body             the request body, for POST, PUT, PATCH and DELETE (its Content-Type given in
--                    headers)
-- Their syntax is checked where a site is added or imported (uptimelab.domain.assertions).

ALTER TABLE sites
    ADD COLUMN IF NOT EXISTS expect_body     text CHECK (length(expect_body) <= 1000),
    ADD COLUMN IF NOT EXISTS expect_json     text CHECK (length(expect_json) <= 1000),
    ADD COLUMN IF NOT EXISTS max_response_ms integer CHECK (max_response_ms > 0),
    ADD COLUMN IF NOT EXISTS headers         jsonb CHECK (jsonb_typeof(headers) = 'object'),
    ADD COLUMN IF NOT EXISTS body            text CHECK (length(body) <= 65536);

-- A ping that answered with an expected status but failed an assertion: category 'assertion'.
-- The check of sql/001_schema.sql is replaced by a wider one (every old row passes it).
ALTER TABLE pings DROP CONSTRAINT IF EXISTS pings_error_category_check;
ALTER TABLE pings ADD CONSTRAINT pings_error_category_check
    CHECK (error_category IN ('dns', 'refused', 'timeout', 'tls', 'network', 'protocol',
                              'http_status', 'too_many_redirects', 'assertion'));
