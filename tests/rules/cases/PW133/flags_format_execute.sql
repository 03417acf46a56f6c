DO $$
DECLARE
  tbl text := 'invoices';
BEGIN
  EXECUTE format('ALTER TABLE %I ADD COLUMN note text NOT NULL DEFAULT %L', tbl, '');
END
$$;
