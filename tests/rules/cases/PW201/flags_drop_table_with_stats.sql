-- stats: demo-stats.json
DROP TABLE IF EXISTS settings;
