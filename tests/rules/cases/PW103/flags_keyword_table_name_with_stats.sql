-- stats: keyword-names-stats.json
ALTER TABLE "user" ALTER COLUMN name SET NOT NULL;
