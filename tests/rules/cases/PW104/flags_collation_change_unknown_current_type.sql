-- Without a catalog the current type is not known; from a varchar the change keeps the
-- table, but its COLLATE clause rebuilds the column's indexes anyway (checked on 15).
ALTER TABLE accounts ALTER COLUMN username TYPE text COLLATE unicode;
