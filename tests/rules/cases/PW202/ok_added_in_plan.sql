ALTER TABLE invoices ADD COLUMN tmp text;
ALTER TABLE invoices DROP COLUMN tmp;
