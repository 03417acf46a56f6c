CREATE TABLE webhooks (id bigint PRIMARY KEY, payload json);
