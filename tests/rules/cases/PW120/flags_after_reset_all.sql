-- RESET ALL (as pg_dump-style schema files end) puts lock_timeout back to its default
SET lock_timeout = '1s';
RESET ALL;
ALTER TABLE invoices ADD COLUMN note text;
