SET lock_timeout = '1s';
DELETE FROM plan_phases;
ALTER TABLE plan_phases ADD COLUMN "index" smallint NOT NULL;
TRUNCATE plans;
ALTER TABLE plans ADD COLUMN kind text NOT NULL;
