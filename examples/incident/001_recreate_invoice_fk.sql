-- Change how invoices reference payment accounts: recreate the foreign key
-- (ON DELETE RESTRICT instead of NO ACTION). This is the shape of the
-- migration that froze invoices for ~45 s in the Sendcloud incident.
ALTER TABLE invoices DROP CONSTRAINT invoices_payment_account_id_fkey;
ALTER TABLE invoices
    ADD CONSTRAINT invoices_payment_account_id_fkey
    FOREIGN KEY (payment_account_id) REFERENCES payment_accounts (id) ON DELETE RESTRICT;
