-- Lemmy's combined tables: the copy reads every branch of the UNION ALL whole while
-- the new table's foreign keys hold SHARE ROW EXCLUSIVE on the referenced tables.
CREATE TABLE invoice_events (
    id bigint PRIMARY KEY,
    payment_account_id bigint REFERENCES payment_accounts (id)
);
INSERT INTO invoice_events (id, payment_account_id)
SELECT id, payment_account_id FROM invoices
UNION ALL
SELECT -id, id FROM payment_accounts;
