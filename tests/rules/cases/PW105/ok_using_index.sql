-- squawk #693: USING INDEX builds nothing.
ALTER TABLE invoices ADD CONSTRAINT invoices_reference_key UNIQUE USING INDEX invoices_reference_key;
