UPDATE invoices SET currency = 'EUR' WHERE id >= 1 AND id < 10001 AND currency IS NULL;
DELETE FROM invoice_exports WHERE created_at < now() - interval '90 days';
