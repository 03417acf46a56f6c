-- The session's TimeZone is UTC, so from timestamp the change is done in place; the
-- current type is not known without a catalog: a warning, not an error (a USING that
-- converts the values rewrites whatever the zone: still an error).
SET TimeZone = 'UTC';
ALTER TABLE invoices ALTER COLUMN issued_at TYPE timestamptz;
ALTER TABLE invoices ALTER COLUMN paid_at TYPE timestamptz USING paid_at AT TIME ZONE 'UTC';
