-- Types added earlier in the plan are known: these changes are done in place.
ALTER TABLE hosts ADD "ip" cidr;
ALTER TABLE hosts ALTER COLUMN "ip" TYPE inet;
ALTER TABLE hosts ADD name varchar(20);
ALTER TABLE hosts ALTER COLUMN name TYPE varchar(40);
ALTER TABLE hosts ALTER COLUMN name TYPE text;
ALTER TABLE hosts ADD amount numeric(10, 2);
ALTER TABLE hosts ALTER COLUMN amount TYPE numeric(12, 2);
ALTER TABLE hosts ADD seen timestamptz(3);
ALTER TABLE hosts ALTER COLUMN seen TYPE timestamptz(6);
ALTER TABLE hosts ADD code text;
ALTER TABLE hosts ALTER COLUMN code TYPE varchar;
