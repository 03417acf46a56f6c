CREATE TABLE payouts (id bigint PRIMARY KEY, reference varchar(20));
