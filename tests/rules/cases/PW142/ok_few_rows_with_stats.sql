-- stats: dml-stats.json
UPDATE invoices SET currency = 'USD' WHERE id <= 5000;
UPDATE invoices SET currency = 'USD' WHERE status IS NULL;
