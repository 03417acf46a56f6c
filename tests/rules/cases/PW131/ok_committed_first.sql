BEGIN;
ALTER TYPE invoice_status ADD VALUE 'refunded';
COMMIT;
BEGIN;
UPDATE invoices SET status = 'refunded' WHERE refunded_at IS NOT NULL;
COMMIT;
