-- A project's migrations are strings handed to a function of its own that EXECUTEs them,
-- guarded by its migrations table: the SQL in the string is what runs.
create or replace function run_sql(text) returns void as $$
begin execute $1; end;
$$ language plpgsql strict;

select run_sql($$
insert into schema_log (id) values ('0013');
create index orders_created_at_idx on orders (created_at);
$$) where not exists (select 1 from schema_log where id = '0013');

create or replace function public.exec_named(stmt text) returns void language plpgsql as $f$
begin
  execute stmt;
end
$f$;

select public.exec_named('create index orders_total_idx on orders (total)');
