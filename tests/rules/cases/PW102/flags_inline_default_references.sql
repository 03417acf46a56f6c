ALTER TABLE invoices ADD COLUMN refund_account_id bigint DEFAULT 1 REFERENCES payment_accounts (id);
