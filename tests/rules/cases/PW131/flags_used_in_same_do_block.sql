-- One DO block is one transaction: the UPDATE fails with "unsafe use of new value"
-- whether or not the runner wraps the file in a transaction.
DO $$
BEGIN
    ALTER TYPE invoice_status ADD VALUE 'refunded';
    UPDATE invoices SET status = 'refunded' WHERE refunded_at IS NOT NULL;
END $$;
