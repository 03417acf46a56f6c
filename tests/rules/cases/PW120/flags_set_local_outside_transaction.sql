-- SET LOCAL (and set_config(..., true)) outside a transaction block sets nothing past its
-- own statement: PostgreSQL warns and the ALTER runs with no lock_timeout.
BEGIN;
CREATE TABLE refunds (id bigint PRIMARY KEY);
COMMIT;
SET LOCAL lock_timeout = '1s';
SELECT set_config('lock_timeout', '1s', true);
ALTER TABLE invoices ADD COLUMN note text;
