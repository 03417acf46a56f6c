-- stats: demo-stats.json
-- invoices.amount_cents is NOT NULL in the catalog: readers may rely on it.
SET lock_timeout = '1s';
ALTER TABLE invoices ALTER COLUMN amount_cents DROP NOT NULL;
