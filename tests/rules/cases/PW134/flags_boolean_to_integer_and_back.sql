-- boolean <-> integer has only an explicit cast: both changes fail without USING
CREATE TABLE settings (id bigint PRIMARY KEY, enabled boolean, level integer);
ALTER TABLE settings ALTER COLUMN enabled TYPE integer;
ALTER TABLE settings ALTER COLUMN level TYPE boolean;
