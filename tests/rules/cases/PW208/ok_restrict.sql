DROP TYPE invoice_status;
DROP TABLE payment_accounts RESTRICT;
