-- flipt's 12_: a foreign key an earlier statement added, dropped with CASCADE: nothing
-- can depend on a foreign key (pg_depend names none), so CASCADE drops nothing more.
ALTER TABLE invoices ADD CONSTRAINT invoices_account_fkey
    FOREIGN KEY (payment_account_id) REFERENCES payment_accounts (id) NOT VALID;
ALTER TABLE invoices DROP CONSTRAINT invoices_account_fkey CASCADE;
