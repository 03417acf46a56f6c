-- stats: demo-stats.json
TRUNCATE invoices, payment_accounts CASCADE;
