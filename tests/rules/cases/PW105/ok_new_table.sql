CREATE TABLE refunds (id bigint, reference text);
ALTER TABLE refunds ADD PRIMARY KEY (id);
ALTER TABLE refunds ADD CONSTRAINT refunds_reference_key UNIQUE (reference);
