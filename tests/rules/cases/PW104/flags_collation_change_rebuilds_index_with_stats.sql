-- stats: catalog-variants-stats.json
-- key stays text, so the table is kept, but a COLLATE clause gives the column a new
-- collation: the server rebuilds settings_pkey (checked on 15: its relfilenode changes).
ALTER TABLE settings ALTER COLUMN key TYPE text COLLATE "C";
