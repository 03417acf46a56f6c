-- squawk #628: SET NOT NULL after a validated CHECK (c IS NOT NULL) does not scan.
BEGIN;
ALTER TABLE invoices ADD CONSTRAINT invoices_status_nn CHECK (status IS NOT NULL) NOT VALID;
COMMIT;
BEGIN;
ALTER TABLE invoices VALIDATE CONSTRAINT invoices_status_nn;
COMMIT;
BEGIN;
ALTER TABLE invoices ALTER COLUMN status SET NOT NULL;
ALTER TABLE invoices DROP CONSTRAINT invoices_status_nn;
COMMIT;
