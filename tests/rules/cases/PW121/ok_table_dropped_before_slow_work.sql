-- The ACCESS EXCLUSIVE of a dropped table blocks only queries on a table that is gone at
-- COMMIT: they fail either way, so holding it through slow work costs nothing more.
DROP TABLE IF EXISTS jobstatuses;
INSERT INTO preferences (userid, name) SELECT id, themeprops FROM users;
