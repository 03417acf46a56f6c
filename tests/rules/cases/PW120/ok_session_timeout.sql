SET lock_timeout = '500ms';
ALTER TABLE invoices ADD COLUMN note text;
