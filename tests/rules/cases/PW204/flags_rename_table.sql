ALTER TABLE invoices RENAME TO bills;
