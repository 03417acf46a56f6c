-- Django's CreateModel with foreign keys to existing tables: the FK checks the new,
-- empty table's rows only; SHARE ROW EXCLUSIVE on the referenced tables is brief.
BEGIN;
CREATE TABLE child (id bigint PRIMARY KEY, parent_id bigint NOT NULL, other_id bigint NOT NULL);
ALTER TABLE child ADD CONSTRAINT child_parent_fk FOREIGN KEY (parent_id) REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE child ADD CONSTRAINT child_other_fk FOREIGN KEY (other_id) REFERENCES other (id) DEFERRABLE INITIALLY DEFERRED;
CREATE INDEX child_parent_idx ON child (parent_id);
CREATE INDEX child_other_idx ON child (other_id);
COMMIT;
