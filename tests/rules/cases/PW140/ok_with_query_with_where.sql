SET lock_timeout = '2s';
WITH u AS (UPDATE accounts SET plan = 'free' WHERE id = 7 RETURNING id) SELECT count(*) FROM u;
