SET lock_timeout = '2s';
WITH u AS (UPDATE accounts SET plan = 'free' RETURNING id) SELECT count(*) FROM u;
WITH gone AS (DELETE FROM sessions RETURNING user_id) INSERT INTO logouts (user_id) SELECT user_id FROM gone;
