alter table invoices add foreign key (payment_account_id) references payment_accounts;
