-- stats: demo-stats.json
-- status is text: text -> varchar without a limit is binary-coercible.
ALTER TABLE invoices ALTER COLUMN status TYPE varchar USING status::varchar;
