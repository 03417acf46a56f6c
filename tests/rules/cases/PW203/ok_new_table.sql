CREATE TABLE refunds (id bigint PRIMARY KEY, amt bigint);
ALTER TABLE refunds RENAME COLUMN amt TO amount_cents;
