DO $$
BEGIN
  ALTER TABLE invoices ADD COLUMN note text;
END IF;
END
$$;
