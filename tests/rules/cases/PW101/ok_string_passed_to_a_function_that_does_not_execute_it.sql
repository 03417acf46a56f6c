-- A function that only stores its argument: the string is data, not SQL that runs.
create or replace function remember(text) returns void as $$
begin insert into notes (body) values ($1); end;
$$ language plpgsql;

select remember('create index orders_created_at_idx on orders (created_at)');
