-- set_config(..., true) is SET LOCAL: the value lasts until this transaction ends
BEGIN;
SELECT set_config('lock_timeout', '500ms', true);
ALTER TABLE invoices ADD COLUMN note text;
COMMIT;
