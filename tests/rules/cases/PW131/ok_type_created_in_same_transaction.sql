BEGIN;
CREATE TYPE refund_reason AS ENUM ('fraud');
ALTER TYPE refund_reason ADD VALUE 'duplicate';
CREATE TABLE refunds (id bigint PRIMARY KEY, reason refund_reason DEFAULT 'duplicate');
COMMIT;
