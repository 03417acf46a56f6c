-- from the SQL alone the current type is not known: PW104 only
SET lock_timeout = '1s';
ALTER TABLE invoices ALTER COLUMN status TYPE integer;
