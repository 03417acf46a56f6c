-- a row or a keyed batch, by primary key: quick, even while the ADD COLUMN's lock is held
BEGIN;
SET lock_timeout = '1s';
ALTER TABLE invoices ADD COLUMN region text;
UPDATE invoices SET region = 'eu' WHERE id = 7;
UPDATE invoices SET region = 'us' WHERE id IN (8, 9, 10) AND region IS NULL;
UPDATE invoices SET region = 'eu' WHERE id >= 1 AND id < 1001;
COMMIT;
