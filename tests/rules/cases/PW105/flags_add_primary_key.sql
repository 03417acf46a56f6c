ALTER TABLE payment_accounts ADD PRIMARY KEY (id);
