ALTER TABLE invoices ADD CONSTRAINT invoices_reference_key UNIQUE (reference);
