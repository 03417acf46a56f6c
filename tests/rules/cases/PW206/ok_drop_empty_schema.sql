-- Without CASCADE the drop fails safely unless the schema is empty.
DROP SCHEMA reporting;
