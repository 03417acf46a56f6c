-- stats: demo-stats.json
-- It exists: IF EXISTS does not make the drop any safer.
ALTER TABLE invoices DROP COLUMN IF EXISTS status;
