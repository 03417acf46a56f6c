CREATE TABLE refunds (id bigint PRIMARY KEY, amount_cents bigint);
ALTER TABLE refunds ADD CONSTRAINT refunds_amount_positive CHECK (amount_cents > 0);
