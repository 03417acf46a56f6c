-- After the file's own COMMIT the DO block runs in a transaction of its own (its body's):
-- the runner's file transaction is not the one holding the lock.
BEGIN;
SET LOCAL lock_timeout = '1s';
CREATE TABLE refunds (id bigint PRIMARY KEY);
COMMIT;
DO $$
BEGIN
    ALTER TABLE invoices ADD COLUMN note text;
    UPDATE invoices SET note = '';
END $$;
