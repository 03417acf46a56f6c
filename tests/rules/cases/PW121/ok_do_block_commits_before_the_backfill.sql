-- A DO block that COMMITs after the ALTER: the batched backfill after it runs in new
-- transactions, each COMMIT in its loop ending one, and ACCESS EXCLUSIVE on invoices
-- ended with the first COMMIT (pg_locks shows none during the loop).
-- pgwarden: no-file-transaction
DO $$
BEGIN
    SET LOCAL lock_timeout = '1s';
    ALTER TABLE invoices ADD COLUMN note text;
    COMMIT;
    LOOP
        UPDATE invoices SET note = '' WHERE id IN (
            SELECT id FROM invoices WHERE note IS NULL LIMIT 1000);
        EXIT WHEN NOT FOUND;
        COMMIT;
    END LOOP;
END $$;
