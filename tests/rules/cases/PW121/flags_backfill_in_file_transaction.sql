-- stats: demo-stats.json
-- The file runs as one transaction: ADD COLUMN's ACCESS EXCLUSIVE lasts through the UPDATE.
ALTER TABLE invoices ADD COLUMN currency text;
UPDATE invoices SET currency = 'EUR';
