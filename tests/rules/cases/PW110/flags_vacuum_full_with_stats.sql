-- stats: demo-stats.json
VACUUM (FULL, ANALYZE) invoices;
