-- stats: dml-stats.json
DELETE FROM invoices WHERE status = 'paid' AND amount >= 100;
