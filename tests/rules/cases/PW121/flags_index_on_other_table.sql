BEGIN;
ALTER TABLE payment_accounts ADD COLUMN closed_at timestamptz;
CREATE INDEX invoices_created_at_idx ON invoices (created_at);
COMMIT;
