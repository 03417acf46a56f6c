-- stats: demo-stats.json
-- invoices.status is nullable in the catalog: DROP NOT NULL changes nothing.
SET lock_timeout = '1s';
ALTER TABLE invoices ALTER COLUMN status DROP NOT NULL;
