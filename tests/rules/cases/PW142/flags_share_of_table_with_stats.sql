-- stats: dml-stats.json
UPDATE invoices SET status = 'archived' WHERE created_at < '2021-01-01';
