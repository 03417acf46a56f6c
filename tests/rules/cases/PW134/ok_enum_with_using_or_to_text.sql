-- USING says how to convert; an enum converts to text on its own
SET lock_timeout = '1s';
CREATE TYPE order_state AS ENUM ('new', 'paid', 'shipped');
ALTER TABLE orders ALTER COLUMN state TYPE order_state USING state::text::order_state;
CREATE TABLE carts (id bigint PRIMARY KEY, state order_state);
