ALTER TABLE invoices ADD COLUMN amount_euros numeric GENERATED ALWAYS AS (amount_cents / 100.0) STORED;
