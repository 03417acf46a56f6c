-- Everyday hazards on a hot table.
CREATE INDEX invoices_created_at_idx ON invoices (created_at);
ALTER TABLE invoices ADD COLUMN paid_at timestamp DEFAULT now();
ALTER TABLE invoices ALTER COLUMN status SET NOT NULL;
ALTER TABLE invoices ALTER COLUMN amount_cents TYPE bigint;
