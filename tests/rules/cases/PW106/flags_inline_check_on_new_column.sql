-- squawk #314 / Eugene #110: the server still scans the table to verify the new CHECK.
ALTER TABLE invoices ADD COLUMN discount_cents integer CHECK (discount_cents >= 0);
