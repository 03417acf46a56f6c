-- an enum converts on its own only to a string type
CREATE TYPE priority AS ENUM ('low', 'high');
CREATE TABLE tickets (id bigint PRIMARY KEY, prio priority);
ALTER TABLE tickets ALTER COLUMN prio TYPE integer;
