ALTER TABLE invoices ADD COLUMN currency text NOT NULL DEFAULT 'EUR';
ALTER TABLE invoices ADD COLUMN note text;
