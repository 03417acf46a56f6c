-- stats: demo-stats.json
SET lock_timeout = '5s';
ALTER TABLE settings ADD COLUMN note text;
