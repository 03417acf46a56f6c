-- A copy into a new table of rows picked by key, or of VALUES, is quick.
ALTER TABLE payment_accounts ADD COLUMN tier text;
CREATE TABLE invoice_copies (id bigint PRIMARY KEY, amount_cents bigint);
INSERT INTO invoice_copies (id, amount_cents) SELECT id, amount_cents FROM invoices WHERE id = 7;
INSERT INTO invoice_copies (id, amount_cents) VALUES (8, 100);
