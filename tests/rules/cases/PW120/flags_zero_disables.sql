SET lock_timeout = 0;
ALTER TABLE invoices ADD COLUMN note text;
