CREATE TABLE payouts (id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY, amount_cents bigint);
