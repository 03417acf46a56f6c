-- stats: demo-stats.json
-- No DEFAULT partition known: nothing to re-check.
CREATE TABLE invoices_2026 PARTITION OF invoices_by_year FOR VALUES FROM (2026) TO (2027);
