-- A DO block after the file's own COMMIT runs in a transaction of its own; adding a
-- value there (idempotently) and using it nowhere is allowed since PostgreSQL 12.
BEGIN;
CREATE TABLE refunds (id bigint PRIMARY KEY);
COMMIT;
DO $$
BEGIN
    ALTER TYPE invoice_status ADD VALUE 'refunded';
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;
