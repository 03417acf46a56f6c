REINDEX INDEX CONCURRENTLY invoices_payment_account_id_idx;
REINDEX (CONCURRENTLY) TABLE invoices;
