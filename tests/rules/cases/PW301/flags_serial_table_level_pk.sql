CREATE TABLE payouts (id serial, amount_cents bigint, PRIMARY KEY (id));
