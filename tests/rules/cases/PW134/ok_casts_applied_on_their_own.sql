-- widening numbers, date -> timestamptz, json -> jsonb, numeric -> integer (assignment)
CREATE TABLE orders (id integer PRIMARY KEY, placed date, body json, total numeric, at timestamp);
ALTER TABLE orders ALTER COLUMN id TYPE bigint;
ALTER TABLE orders ALTER COLUMN placed TYPE timestamptz;
ALTER TABLE orders ALTER COLUMN body TYPE jsonb;
ALTER TABLE orders ALTER COLUMN total TYPE integer;
ALTER TABLE orders ALTER COLUMN at TYPE date;
