-- stats: demo-stats.json
-- amount_cents is NOT NULL already (catalog in the snapshot): no scan.
ALTER TABLE invoices ALTER COLUMN amount_cents SET NOT NULL;
