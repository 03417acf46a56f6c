-- stats: demo-stats.json
-- The catalog shows neither exists: nothing is dropped.
DROP TABLE IF EXISTS tmp_old_import;
ALTER TABLE invoices DROP COLUMN IF EXISTS never_existed;
