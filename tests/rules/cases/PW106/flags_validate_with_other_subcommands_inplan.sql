-- The validation scan runs under ACCESS EXCLUSIVE, the lock ADD COLUMN takes.
ALTER TABLE invoices VALIDATE CONSTRAINT invoices_amount_positive, ADD COLUMN note text;
