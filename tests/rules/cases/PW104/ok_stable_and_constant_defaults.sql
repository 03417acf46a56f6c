-- squawk #645: now(), current_timestamp and constants need no rewrite (PostgreSQL 11+).
ALTER TABLE invoices ADD COLUMN seen_at timestamptz DEFAULT now();
ALTER TABLE invoices ADD COLUMN noted_at timestamptz DEFAULT current_timestamp;
ALTER TABLE invoices ADD COLUMN currency text NOT NULL DEFAULT 'EUR';
ALTER TABLE invoices ADD COLUMN tags text[] DEFAULT '{}';
