ALTER TABLE invoices SET TABLESPACE fast_ssd;
