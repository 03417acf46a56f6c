-- stats: dml-stats.json
UPDATE settings SET value = 'w' WHERE value = 'v';
