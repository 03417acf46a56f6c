-- stats: demo-stats.json
ALTER TABLE invoices ALTER COLUMN amount_cents TYPE bigint;
