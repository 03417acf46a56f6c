-- no type converts to an enum on its own, whatever the column's current type
SET lock_timeout = '1s';
CREATE TYPE order_state AS ENUM ('new', 'paid', 'shipped');
ALTER TABLE orders ALTER COLUMN state TYPE order_state;
