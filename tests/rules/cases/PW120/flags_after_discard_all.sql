-- DISCARD ALL (as poolers and session resets run) puts every setting back to its default
SET lock_timeout = '1s';
DISCARD ALL;
ALTER TABLE invoices ADD COLUMN note text;
