-- stats: demo-stats.json
SET lock_timeout = '1s';
ALTER TABLE invoices ALTER COLUMN status TYPE integer USING status::integer;
