-- stats: demo-stats.json
-- status is text in the catalog: text -> varchar without a limit is binary-compatible.
ALTER TABLE invoices ALTER COLUMN status TYPE varchar;
