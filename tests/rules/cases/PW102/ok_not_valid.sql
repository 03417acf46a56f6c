ALTER TABLE invoices ADD CONSTRAINT fk FOREIGN KEY (payment_account_id)
    REFERENCES payment_accounts (id) NOT VALID;
