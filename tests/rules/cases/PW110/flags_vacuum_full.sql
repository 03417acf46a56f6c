VACUUM FULL invoices;
