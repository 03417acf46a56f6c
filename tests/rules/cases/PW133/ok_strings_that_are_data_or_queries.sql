-- Built-in functions, a query in a string and the plan's own function that does not run
-- its argument: nothing is hidden.
select lower('drop table orders');
select log_query('select 1');
create function remember(text) returns void language plpgsql as $$
begin insert into notes (body) values ($1); end
$$;
select remember('drop table orders');
select pg_catalog.lower('drop table orders');
