-- stats: demo-stats.json
BEGIN;
SET LOCAL lock_timeout = '1s';
ALTER TABLE invoices ADD COLUMN note text;
COMMIT;
