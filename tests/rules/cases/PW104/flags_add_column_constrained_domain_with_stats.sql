-- stats: catalog-variants-stats.json
-- email_addr is a domain with a CHECK: every row is checked, even with no default.
ALTER TABLE invoices ADD COLUMN contact email_addr;
