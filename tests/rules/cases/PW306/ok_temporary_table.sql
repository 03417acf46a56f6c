CREATE TEMP TABLE guard (blocked integer NOT NULL PRIMARY KEY, at timestamp, note varchar(20), j json);
