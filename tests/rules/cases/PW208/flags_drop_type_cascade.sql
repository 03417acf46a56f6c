DROP TYPE invoice_status CASCADE;
