-- the plan added the column as a varchar: no automatic cast to uuid
CREATE TABLE devices (id bigint PRIMARY KEY);
ALTER TABLE devices ADD COLUMN token varchar(36);
ALTER TABLE devices ALTER COLUMN token TYPE uuid;
