-- a new column without a default is all NULL: the server does not validate (measured)
ALTER TABLE invoices ADD COLUMN refund_account_id bigint REFERENCES payment_accounts (id);
