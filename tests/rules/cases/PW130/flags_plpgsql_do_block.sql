DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_class WHERE relname = 'invoices_created_at_idx') THEN
    CREATE INDEX CONCURRENTLY invoices_created_at_idx ON invoices (created_at);
  END IF;
END
$$;
