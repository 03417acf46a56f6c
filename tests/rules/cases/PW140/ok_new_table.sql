CREATE TABLE refunds (id bigint PRIMARY KEY, reason text);
UPDATE refunds SET reason = 'n/a';
DELETE FROM refunds;
