UPDATE invoices SET status = 'paid' WHERE true;
DELETE FROM invoices WHERE 1 = 1;
