-- stats: demo-stats.json
SET lock_timeout = '50ms';
ALTER TABLE invoices ADD COLUMN note text;
