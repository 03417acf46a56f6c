CREATE TABLE payouts (id bigint PRIMARY KEY, paid_at timestamp);
ALTER TABLE invoices ADD COLUMN due_at timestamp without time zone;
