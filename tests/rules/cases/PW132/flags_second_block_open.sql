BEGIN;
ALTER TABLE invoices ADD COLUMN note text;
COMMIT;
BEGIN;
ALTER TABLE invoices ADD COLUMN memo text;
