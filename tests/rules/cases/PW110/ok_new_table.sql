CREATE TABLE scratch (id bigint PRIMARY KEY);
CLUSTER scratch USING scratch_pkey;
