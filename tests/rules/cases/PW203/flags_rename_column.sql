ALTER TABLE invoices RENAME COLUMN amount_cents TO total_cents;
