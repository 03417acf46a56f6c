SET lock_timeout = '2s';
ALTER TABLE twofactor ALTER COLUMN last_used TYPE bigint, ALTER COLUMN last_used SET NOT NULL;
