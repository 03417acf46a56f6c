UPDATE invoices SET currency = 'EUR' WHERE id >= 1 AND id < 10001 AND currency IS NULL;
DELETE FROM invoices WHERE id BETWEEN 20001 AND 30000;
