SET lock_timeout = '10s';
ALTER TABLE invoices ADD COLUMN note text;
