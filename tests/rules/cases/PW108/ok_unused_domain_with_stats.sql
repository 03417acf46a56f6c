-- stats: demo-stats.json
-- No table has a column of this domain.
ALTER DOMAIN amount ADD CONSTRAINT amount_positive CHECK (VALUE > 0);
