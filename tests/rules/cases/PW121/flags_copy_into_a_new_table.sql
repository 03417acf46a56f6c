-- immich's UsePgVectors: the copy into the new table reads all of invoices while the
-- ALTER's ACCESS EXCLUSIVE on payment_accounts is still held (measured: 2.1 s of copy
-- under the lock on a 3M-row source).
ALTER TABLE payment_accounts ADD COLUMN tier text;
CREATE TABLE invoice_copies (id bigint PRIMARY KEY, amount_cents bigint);
INSERT INTO invoice_copies (id, amount_cents)
SELECT i.id, i.amount_cents FROM invoices i WHERE i.amount_cents IS NOT NULL;
