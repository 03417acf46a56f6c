-- stats: demo-stats.json
-- status is text: a length limit means checking and rewriting every row.
ALTER TABLE invoices ALTER COLUMN status TYPE varchar(20);
