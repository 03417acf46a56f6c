-- A COMMIT that runs only when a condition holds may not run: the lock may still be held.
-- pgwarden: no-file-transaction
DO $$
BEGIN
    SET LOCAL lock_timeout = '1s';
    ALTER TABLE invoices ADD COLUMN note text;
    IF current_setting('app.batch', true) = 'on' THEN
        COMMIT;
    END IF;
    UPDATE invoices SET note = '';
END $$;
