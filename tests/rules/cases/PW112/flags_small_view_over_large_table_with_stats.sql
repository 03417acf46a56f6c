-- stats: catalog-variants-stats.json
-- A small view over invoices (5M rows): readers of the view wait for the whole query.
REFRESH MATERIALIZED VIEW invoice_totals;
