UPDATE invoices SET currency = 'EUR';
