-- A constraint of a kind not known (no catalog): a primary key or unique constraint
-- takes the foreign keys that reference it.
ALTER TABLE payment_accounts DROP CONSTRAINT payment_accounts_pkey CASCADE;
