-- stats: demo-stats.json
-- The catalog shows invoices: IF NOT EXISTS makes this a no-op, and invoices stays the full table.
CREATE TABLE IF NOT EXISTS public.invoices (id bigint PRIMARY KEY);
