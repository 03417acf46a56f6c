SET lock_timeout = '1s';
ALTER TABLE safekeepers ADD scheduling_policy VARCHAR NOT NULL DEFAULT "disabled";
ALTER TABLE safekeepers ALTER COLUMN mode SET DEFAULT "Active";
CREATE TABLE jobs (id bigint PRIMARY KEY, state text DEFAULT "queued");
