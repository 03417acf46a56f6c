CREATE TABLE payouts (id bigint PRIMARY KEY, currency char(3), kind character);
