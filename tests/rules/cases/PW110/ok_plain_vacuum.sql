VACUUM (ANALYZE) invoices;
VACUUM (FULL false) invoices;
