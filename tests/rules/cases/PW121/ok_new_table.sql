CREATE TABLE refunds (id bigint PRIMARY KEY, invoice_id bigint);
ALTER TABLE refunds ADD COLUMN reason text;
CREATE INDEX refunds_invoice_id_idx ON refunds (invoice_id);
UPDATE refunds SET reason = 'n/a';
