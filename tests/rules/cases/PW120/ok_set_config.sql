-- set_config() is SET by a function call: is_local false is the session's value
SELECT pg_catalog.set_config('lock_timeout', '1s', false);
ALTER TABLE invoices ADD COLUMN note text;
