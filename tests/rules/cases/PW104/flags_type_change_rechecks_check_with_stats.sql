-- stats: catalog-variants-stats.json
-- text -> varchar is done in place, but the CHECK on status is validated again.
ALTER TABLE invoices ALTER COLUMN status TYPE varchar;
