CREATE INDEX CONCURRENTLY invoices_tmp_idx ON invoices (created_at);
DROP INDEX invoices_tmp_idx;
