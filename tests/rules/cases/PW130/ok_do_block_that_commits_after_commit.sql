-- The same DO block after the file's COMMIT runs outside any transaction block: its
-- COMMITs end the transactions it opens, as intended.
BEGIN;
SET LOCAL lock_timeout = '1s';
ALTER TABLE invoices ADD COLUMN note text;
COMMIT;
DO $$
BEGIN
  UPDATE invoices SET note = '' WHERE id < 1000;
  COMMIT;
  UPDATE invoices SET note = '' WHERE id >= 1000;
END $$;
