-- stats: demo-stats.json
CREATE UNIQUE INDEX invoices_ref_idx ON invoices (id, created_at);
