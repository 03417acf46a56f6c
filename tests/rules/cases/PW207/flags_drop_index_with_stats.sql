-- stats: demo-stats.json
DROP INDEX invoices_payment_account_id_idx;
