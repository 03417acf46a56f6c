ALTER TABLE invoices ADD CONSTRAINT invoices_status_ok CHECK (status <> '' AND status IS NOT NULL);
ALTER TABLE invoices ALTER COLUMN status SET NOT NULL;
