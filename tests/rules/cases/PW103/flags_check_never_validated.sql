-- A NOT VALID check proves nothing until it is validated.
ALTER TABLE invoices ADD CONSTRAINT invoices_status_nn CHECK (status IS NOT NULL) NOT VALID;
ALTER TABLE invoices ALTER COLUMN status SET NOT NULL;
