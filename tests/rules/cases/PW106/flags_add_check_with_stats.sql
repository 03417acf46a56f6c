-- stats: demo-stats.json
ALTER TABLE invoices ADD CHECK (amount_cents > 0);
