ALTER TABLE invoices ADD COLUMN seq bigserial;
