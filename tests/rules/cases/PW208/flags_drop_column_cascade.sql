ALTER TABLE invoices DROP COLUMN legacy_reference CASCADE;
