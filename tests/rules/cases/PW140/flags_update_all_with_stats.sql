-- stats: demo-stats.json
UPDATE invoices SET status = 'open';
