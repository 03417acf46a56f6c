-- squawk's prefer-bigint-over-int flags every int column; a count or an amount is fine.
CREATE TABLE payouts (id bigint PRIMARY KEY, attempts integer NOT NULL DEFAULT 0);
