CREATE TABLE payouts (id bigserial PRIMARY KEY, amount_cents bigint);
