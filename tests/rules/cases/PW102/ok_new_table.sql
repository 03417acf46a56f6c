CREATE TABLE refunds (id bigint PRIMARY KEY, invoice_id bigint);
ALTER TABLE refunds ADD CONSTRAINT refunds_invoice_id_fkey FOREIGN KEY (invoice_id) REFERENCES invoices (id);
