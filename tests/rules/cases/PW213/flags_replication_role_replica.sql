SET session_replication_role = replica;
INSERT INTO invoices (payment_account_id) VALUES (999999);
