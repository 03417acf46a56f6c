-- Explicit BEGIN/COMMIT wins: the concurrent build runs after COMMIT, outside any transaction.
BEGIN;
SET LOCAL lock_timeout = '1s';
ALTER TABLE invoices ADD COLUMN note text;
COMMIT;
CREATE INDEX CONCURRENTLY invoices_note_idx ON invoices (note);
