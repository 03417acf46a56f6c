-- Eugene E4 flags any statement after ACCESS EXCLUSIVE; quick ones do not extend the lock noticeably.
ALTER TABLE invoices ADD COLUMN currency text;
ALTER TABLE invoices ADD COLUMN note text;
COMMENT ON COLUMN invoices.note IS 'free text';
