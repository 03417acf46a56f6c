-- timestamp -> timestamptz rewrites unless the session TimeZone is UTC; the plan sets it.
SET TimeZone = 'Europe/Paris';
ALTER TABLE hosts ADD seen timestamp;
ALTER TABLE hosts ALTER COLUMN seen TYPE timestamptz;
