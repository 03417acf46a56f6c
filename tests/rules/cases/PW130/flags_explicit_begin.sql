BEGIN;
CREATE INDEX CONCURRENTLY invoices_created_at_idx ON invoices (created_at);
COMMIT;
