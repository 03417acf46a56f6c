-- stats: demo-stats.json
-- 50k rows, no writes: a warning; a 2-row table: a note.
ALTER TABLE payment_accounts ADD CONSTRAINT payment_accounts_iban_key UNIQUE (iban);
ALTER TABLE settings ADD CONSTRAINT settings_value_key UNIQUE (value);
