-- ACCESS EXCLUSIVE on a materialized view blocks every read of it (checked on 15:
-- OWNER TO takes AccessExclusiveLock): the wait queues the readers as on a table.
ALTER MATERIALIZED VIEW daily_totals OWNER TO reporting;
