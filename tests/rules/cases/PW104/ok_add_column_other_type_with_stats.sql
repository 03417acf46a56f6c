-- stats: catalog-variants-stats.json
-- mood is not a constrained domain (an enum, say): no rewrite.
ALTER TABLE invoices ADD COLUMN feeling mood;
