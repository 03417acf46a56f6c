-- A migration handed as a string to a function that EXECUTEs it: CONCURRENTLY fails
-- there ("cannot be executed from a function", checked on 15), and the way out is to run
-- the statement itself, not through the function.
create or replace function run_sql(text) returns void as $$ begin execute $1; end; $$
language plpgsql;
select run_sql($$create index concurrently orders_created_at_idx on orders (created_at)$$);
