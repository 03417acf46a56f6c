-- stats: demo-stats.json
-- pgwarden: ignore PW201 replaced by the new settings table, backup verified
DROP TABLE settings;
CREATE TABLE settings (key text PRIMARY KEY, value text);
