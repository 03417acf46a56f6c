CREATE TABLE payouts (id bigint PRIMARY KEY, paid_at timestamptz, paid_on date);
