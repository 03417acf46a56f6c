-- stats: demo-stats.json
-- The range includes the migration that created invoices (the snapshot shows it, full).
CREATE TABLE invoices (id bigint PRIMARY KEY, account_id bigint);
-- not a new, empty table: the index build is judged by the snapshot's size (PW101 error)
CREATE INDEX invoices_account_id_idx ON invoices (account_id);
