ALTER TABLE invoices_2026_11 ADD CONSTRAINT invoices_2026_11_bound
    CHECK (created_at >= '2026-11-01' AND created_at < '2026-12-01') NOT VALID;
ALTER TABLE invoices_2026_11 VALIDATE CONSTRAINT invoices_2026_11_bound;
ALTER TABLE invoices_by_month ATTACH PARTITION invoices_2026_11
    FOR VALUES FROM ('2026-11-01') TO ('2026-12-01');
