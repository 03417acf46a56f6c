CREATE TABLE archive (id bigint PRIMARY KEY);
ALTER TABLE archive SET TABLESPACE slow_hdd;
