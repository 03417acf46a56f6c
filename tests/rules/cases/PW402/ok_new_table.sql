-- stats: demo-stats.json
CREATE TABLE refunds (id bigint PRIMARY KEY, invoice_id bigint);
CREATE INDEX refunds_invoice_id_idx ON refunds (invoice_id);
