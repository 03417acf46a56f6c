-- A DO block's type change from a type added earlier in the plan names the old type.
ALTER TABLE hosts ADD name varchar(20);
DO $$
BEGIN
  ALTER TABLE hosts ALTER COLUMN name TYPE varchar(10);
END
$$;
