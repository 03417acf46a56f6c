-- stats: demo-stats.json
REINDEX INDEX invoices_payment_account_id_idx;
