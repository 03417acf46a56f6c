-- stats: demo-stats.json
-- text -> varchar and integer -> text have casts PostgreSQL applies on its own
SET lock_timeout = '1s';
ALTER TABLE invoices ALTER COLUMN status TYPE varchar(20);
ALTER TABLE invoices ALTER COLUMN amount_cents TYPE text;
