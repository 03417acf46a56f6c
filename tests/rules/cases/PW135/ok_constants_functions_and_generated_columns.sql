SET lock_timeout = '1s';
ALTER TABLE safekeepers ADD scheduling_policy VARCHAR NOT NULL DEFAULT 'disabled';
ALTER TABLE safekeepers ALTER COLUMN created SET DEFAULT now();
CREATE TABLE jobs (id bigint PRIMARY KEY, state text DEFAULT 'queued', n int DEFAULT (1 + 2), total int GENERATED ALWAYS AS (id * 2) STORED, who text DEFAULT current_user);
