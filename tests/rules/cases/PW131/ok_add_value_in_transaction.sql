-- Allowed since PostgreSQL 12 as long as nothing uses the value before COMMIT.
BEGIN;
ALTER TYPE invoice_status ADD VALUE 'refunded' AFTER 'paid';
COMMIT;
