UPDATE invoices SET currency = 'EUR' WHERE status = 'paid';
