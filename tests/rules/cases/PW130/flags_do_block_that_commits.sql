-- A DO block whose body COMMITs (batched backfills do) inside BEGIN ... COMMIT: the server
-- refuses its COMMIT with "invalid transaction termination" and the migration fails.
BEGIN;
SET LOCAL lock_timeout = '1s';
ALTER TABLE invoices ADD COLUMN note text;
DO $$
DECLARE
  n int;
BEGIN
  LOOP
    UPDATE invoices SET note = '' WHERE id IN (SELECT id FROM invoices WHERE note IS NULL LIMIT 1000);
    GET DIAGNOSTICS n = ROW_COUNT;
    EXIT WHEN n = 0;
    COMMIT;
  END LOOP;
END $$;
COMMIT;
