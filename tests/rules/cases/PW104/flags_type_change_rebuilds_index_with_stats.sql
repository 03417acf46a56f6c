-- stats: catalog-variants-stats.json
-- created_at has an index; under UTC the table is kept but the index is rebuilt.
ALTER TABLE invoices ALTER COLUMN created_at TYPE timestamp;
