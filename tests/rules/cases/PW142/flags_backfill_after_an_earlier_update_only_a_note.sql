ALTER TABLE orders ADD COLUMN region text;
UPDATE orders SET region = 'eu' WHERE id < 1000;
UPDATE orders SET region = 'us' WHERE region IS NULL;
ALTER TABLE orders ADD COLUMN archived boolean NOT NULL DEFAULT false;
INSERT INTO orders SELECT * FROM old_orders;
UPDATE orders SET archived = true WHERE archived = false;
