ALTER TABLE orders ADD COLUMN region text;
UPDATE orders SET region = 'eu' WHERE region IS NULL;
ALTER TABLE orders ADD COLUMN archived boolean NOT NULL DEFAULT false;
UPDATE orders SET archived = true WHERE archived = false AND created_at < now();
ALTER TABLE orders ADD COLUMN channel varchar(26) NOT NULL DEFAULT '';
UPDATE orders SET channel = 'web' WHERE channel = '';
