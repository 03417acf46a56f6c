UPDATE invoices SET status = 'paid' WHERE 1 = 2;
DELETE FROM invoices WHERE false;
