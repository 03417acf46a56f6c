SET lock_timeout = '2s';
WITH moved AS (DELETE FROM events WHERE created_at < now() RETURNING *) INSERT INTO events_archive SELECT * FROM moved;
