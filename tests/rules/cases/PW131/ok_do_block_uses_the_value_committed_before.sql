-- The value was committed by an earlier migration: a DO block using it is fine.
DO $$
BEGIN
    UPDATE invoices SET status = 'refunded' WHERE refunded_at IS NOT NULL;
    ALTER TYPE invoice_status ADD VALUE IF NOT EXISTS 'partially_refunded';
END $$;
