-- stats: demo-stats.json
-- nullable in the catalog, but an earlier statement of the plan made it NOT NULL
SET lock_timeout = '1s';
ALTER TABLE invoices ALTER COLUMN status SET NOT NULL;
ALTER TABLE invoices ALTER COLUMN status DROP NOT NULL;
