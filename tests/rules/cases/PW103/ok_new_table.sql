CREATE TABLE refunds (id bigint PRIMARY KEY, reason text);
ALTER TABLE refunds ALTER COLUMN reason SET NOT NULL;
