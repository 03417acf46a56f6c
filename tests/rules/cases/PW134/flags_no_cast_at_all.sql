-- integer -> uuid and integer -> timestamptz: no cast exists, USING must convert
CREATE TABLE events (id integer PRIMARY KEY, happened integer);
ALTER TABLE events ALTER COLUMN id TYPE uuid;
ALTER TABLE events ALTER COLUMN happened TYPE timestamptz;
