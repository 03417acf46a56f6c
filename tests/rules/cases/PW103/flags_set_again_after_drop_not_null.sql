-- a NOT NULL column, made nullable, then NOT NULL again: NULLs may have been written in between, so SET NOT NULL scans
ALTER TABLE invoices ADD COLUMN priority integer NOT NULL DEFAULT 0;
ALTER TABLE invoices ALTER COLUMN priority DROP NOT NULL;
ALTER TABLE invoices ALTER COLUMN priority SET NOT NULL;
