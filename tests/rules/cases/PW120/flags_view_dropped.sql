-- DROP VIEW waits for ACCESS EXCLUSIVE on the view: a long report reading it holds the
-- drop, and every new query on the view queues behind it (hasura's 41_to_42 drops one).
DROP VIEW hdb_catalog.hdb_role;
