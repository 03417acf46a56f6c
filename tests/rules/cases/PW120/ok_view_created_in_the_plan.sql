-- A view the file creates has no readers yet.
CREATE VIEW open_invoices AS SELECT id FROM invoices WHERE status = 'open';
DROP VIEW open_invoices;
