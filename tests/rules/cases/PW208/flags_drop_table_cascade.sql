DROP TABLE payment_accounts CASCADE;
