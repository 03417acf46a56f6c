-- stats: catalog-variants-stats.json
ALTER DOMAIN amount ADD CONSTRAINT amount_positive CHECK (VALUE > 0);
