-- stats: demo-stats.json
ALTER TABLE invoices DROP CONSTRAINT invoices_payment_account_id_fkey;
ALTER TABLE invoices
    ADD CONSTRAINT invoices_payment_account_id_fkey
    FOREIGN KEY (payment_account_id) REFERENCES payment_accounts (id);
