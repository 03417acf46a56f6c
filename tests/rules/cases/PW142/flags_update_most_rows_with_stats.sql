-- stats: dml-stats.json
UPDATE invoices SET currency = 'USD' WHERE currency IS NULL;
