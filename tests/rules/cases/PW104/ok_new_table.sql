CREATE TABLE refunds (id bigint PRIMARY KEY, amount_cents integer);
ALTER TABLE refunds ALTER COLUMN amount_cents TYPE bigint;
