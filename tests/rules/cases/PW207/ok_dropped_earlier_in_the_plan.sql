-- The second drop finds no index (the first dropped it): IF EXISTS makes it a no-op that
-- locks nothing. Migrations repeat such drops (idempotent scripts, one per rollback step).
DROP INDEX CONCURRENTLY IF EXISTS invoices_status_idx;
DROP INDEX IF EXISTS invoices_status_idx;
