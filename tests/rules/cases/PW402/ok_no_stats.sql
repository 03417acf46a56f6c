-- Without a snapshot nothing is known to exist.
CREATE TABLE invoices (id bigint PRIMARY KEY);
