-- Widening an id: the sequence is rewritten too, but it is one 8 kB page whatever the
-- table's size (checked on 15: new relfilenode, 8192 bytes, for a 200k-row table), so the
-- strong lock taken on line 4 is not held longer by it.
ALTER TABLE role_permission ADD COLUMN note text;
ALTER SEQUENCE role_permission_id_seq AS bigint;
