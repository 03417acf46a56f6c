-- timestamp -> timestamptz is done in place when the session TimeZone is UTC.
SET TimeZone = 'UTC';
ALTER TABLE hosts ADD seen timestamp;
ALTER TABLE hosts ALTER COLUMN seen TYPE timestamptz;
