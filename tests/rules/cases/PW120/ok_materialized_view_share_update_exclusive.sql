-- SET (fillfactor) takes SHARE UPDATE EXCLUSIVE on the view: reads go on.
ALTER MATERIALIZED VIEW daily_totals SET (fillfactor = 90);
