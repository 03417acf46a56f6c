-- The first step of indexing a partitioned table: nothing is built.
CREATE INDEX events_kind_idx ON ONLY events (kind);
