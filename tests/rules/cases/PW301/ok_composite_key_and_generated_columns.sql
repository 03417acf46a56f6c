-- Columns of a composite key that no sequence fills (a join table's references, a
-- generated column) do not run out on their own: the tables they reference are where a
-- bigint key matters, and PW301 flags those.
CREATE TABLE tag_links (tag_id int NOT NULL, post_id int NOT NULL, PRIMARY KEY (tag_id, post_id));
CREATE TABLE labels (b text, level int GENERATED ALWAYS AS (length(b)) STORED, PRIMARY KEY (b, level));
