-- stats: catalog-variants-stats.json
-- value has no index: a new collation changes only the catalog.
ALTER TABLE settings ALTER COLUMN value TYPE text COLLATE "C";
