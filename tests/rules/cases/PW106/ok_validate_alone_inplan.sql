-- Alone, VALIDATE scans under SHARE UPDATE EXCLUSIVE: reads and writes go on.
ALTER TABLE invoices VALIDATE CONSTRAINT invoices_amount_positive;
-- With a sub-command that does not block writes either.
ALTER TABLE invoices VALIDATE CONSTRAINT invoices_amount_positive, ALTER COLUMN note SET STATISTICS 500;
