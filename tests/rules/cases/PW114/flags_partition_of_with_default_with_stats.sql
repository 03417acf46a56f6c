-- stats: catalog-variants-stats.json
-- metrics has a DEFAULT partition: it is read in full under ACCESS EXCLUSIVE.
CREATE TABLE metrics_2026 PARTITION OF metrics FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
