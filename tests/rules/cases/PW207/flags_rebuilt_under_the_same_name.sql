-- A rebuild (synapse's 81/01, immich): the fix builds the new index under another name
-- first, then drops the old one and renames: the table always has the index.
DROP INDEX invoices_old_idx;
CREATE UNIQUE INDEX invoices_old_idx ON invoices (id, status);
