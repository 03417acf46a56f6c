ALTER TABLE invoices ADD CONSTRAINT invoices_status_not_null NOT NULL status;
