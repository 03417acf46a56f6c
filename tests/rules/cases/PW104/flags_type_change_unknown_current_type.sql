ALTER TABLE orders ALTER COLUMN note TYPE varchar(100);
ALTER TABLE orders ALTER COLUMN note TYPE text;
-- What Django writes:
ALTER TABLE "orders" ALTER COLUMN "amount" TYPE numeric(12, 2) USING "amount"::numeric(12, 2);
