-- stats: demo-stats.json
DROP INDEX CONCURRENTLY invoices_payment_account_id_idx;
