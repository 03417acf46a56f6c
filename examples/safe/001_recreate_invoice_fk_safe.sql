-- The same change as incident/001, without blocking invoices.
-- Each transaction waits at most 50 ms for its lock, so little traffic can queue
-- behind it; the runner retries (pgwarden apply does, with backoff).
BEGIN;
SET LOCAL lock_timeout = '50ms';
ALTER TABLE invoices DROP CONSTRAINT invoices_payment_account_id_fkey;
ALTER TABLE invoices
    ADD CONSTRAINT invoices_payment_account_id_fkey
    FOREIGN KEY (payment_account_id) REFERENCES payment_accounts (id) ON DELETE RESTRICT
    NOT VALID;
COMMIT;

-- Validation scans invoices but only takes SHARE UPDATE EXCLUSIVE: reads and writes go on.
BEGIN;
SET LOCAL lock_timeout = '50ms';
ALTER TABLE invoices VALIDATE CONSTRAINT invoices_payment_account_id_fkey;
COMMIT;
