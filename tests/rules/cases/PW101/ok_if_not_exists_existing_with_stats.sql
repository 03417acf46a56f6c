-- stats: demo-stats.json
-- The index exists: nothing is built.
CREATE INDEX IF NOT EXISTS invoices_payment_account_id_idx ON invoices (payment_account_id);
