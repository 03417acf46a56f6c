CREATE TABLE invoices_by_month (id bigint, created_at timestamptz NOT NULL) PARTITION BY RANGE (created_at);
CREATE TABLE invoices_2026_11 (id bigint, created_at timestamptz NOT NULL);
ALTER TABLE invoices_by_month ATTACH PARTITION invoices_2026_11
    FOR VALUES FROM ('2026-11-01') TO ('2026-12-01');
