BEGIN;
ALTER TABLE invoices ADD COLUMN note text;
