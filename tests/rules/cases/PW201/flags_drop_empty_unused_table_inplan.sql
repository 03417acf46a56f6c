-- stats: inplan-empty-tables-stats.json
-- empty and no traffic while sampled: a warning
DROP TABLE import_scratch;
-- empty but busy (a queue): still an error
DROP TABLE import_queue;
