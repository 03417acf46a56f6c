-- stats: demo-stats.json
ALTER TABLE invoices SET TABLESPACE fast_ssd;
