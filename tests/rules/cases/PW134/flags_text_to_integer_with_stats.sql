-- stats: demo-stats.json
-- invoices.status is text in the catalog: no automatic cast to integer
SET lock_timeout = '1s';
ALTER TABLE invoices ALTER COLUMN status TYPE integer;
