-- stats: demo-stats.json
DROP INDEX CONCURRENTLY settings_value_idx;
