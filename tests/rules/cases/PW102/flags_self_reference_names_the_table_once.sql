SET lock_timeout = '1s';
ALTER TABLE lines ADD CONSTRAINT lines_parent_fk FOREIGN KEY (parent_id) REFERENCES lines (id);
