ALTER TABLE invoices ALTER COLUMN payment_account_id DROP NOT NULL;
