-- stats: demo-stats.json
ALTER INDEX invoices_payment_account_id_idx SET TABLESPACE fast_ssd;
