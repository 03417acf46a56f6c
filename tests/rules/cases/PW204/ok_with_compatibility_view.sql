-- Atlas BC101's exception: a view with the old name keeps old code working.
BEGIN;
ALTER TABLE invoices RENAME TO bills;
CREATE VIEW invoices AS SELECT * FROM bills;
COMMIT;
