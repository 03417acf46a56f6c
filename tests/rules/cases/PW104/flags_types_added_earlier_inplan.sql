-- Types added earlier in the plan are known: these changes rewrite for certain.
ALTER TABLE hosts ADD name varchar(20);
ALTER TABLE hosts ALTER COLUMN name TYPE varchar(10);
ALTER TABLE hosts ADD amount numeric(10, 2);
ALTER TABLE hosts ALTER COLUMN amount TYPE numeric(10, 3);
