CREATE INDEX invoices_created_at_idx ON invoices (created_at);
