CREATE TABLE payouts (id bigint PRIMARY KEY, flag "char", currency text);
