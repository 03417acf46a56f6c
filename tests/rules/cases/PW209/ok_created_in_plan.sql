CREATE SCHEMA scratch;
ALTER SCHEMA scratch RENAME TO staging;
