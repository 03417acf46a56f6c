-- stats: demo-stats.json
ALTER TABLE invoices ALTER COLUMN status SET NOT NULL;
