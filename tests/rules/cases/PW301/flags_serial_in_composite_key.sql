-- A sequence-filled column of a composite key does run out.
CREATE TABLE events (tenant_id bigint NOT NULL, seq serial, PRIMARY KEY (tenant_id, seq));
