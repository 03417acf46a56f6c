-- From the SQL alone: real migrations change to text mostly from a varchar, in place.
ALTER TABLE orders ALTER COLUMN note TYPE text;
ALTER TABLE "orders" ALTER COLUMN "title" TYPE varchar USING "title"::varchar;
-- Another cause makes it an error again.
ALTER TABLE orders ALTER COLUMN memo TYPE text, ADD COLUMN token uuid DEFAULT gen_random_uuid();
