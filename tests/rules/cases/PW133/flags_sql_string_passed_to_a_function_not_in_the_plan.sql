-- One migration of a project that runs each through its own run_sql(text), created by an
-- earlier migration that is not linted here: the string may be what runs.
select run_sql($$
insert into schema_log (id) values ('0013');
create index orders_created_at_idx on orders (created_at);
$$) where not exists (select 1 from schema_log where id = '0013');
