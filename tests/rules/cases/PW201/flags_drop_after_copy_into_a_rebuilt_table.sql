CREATE TABLE conf_status_new (id bigint PRIMARY KEY, target bigint NOT NULL);
INSERT INTO conf_status_new SELECT id, target FROM conf_status;
DROP TABLE conf_status;
ALTER TABLE conf_status_new RENAME TO conf_status;
