-- A procedure that commits between batches, CALLed inside BEGIN ... COMMIT: "invalid
-- transaction termination" at its first COMMIT.
CREATE PROCEDURE backfill_notes() LANGUAGE plpgsql AS $$
BEGIN
  UPDATE invoices SET note = '' WHERE id < 1000;
  COMMIT;
END $$;
BEGIN;
SET LOCAL lock_timeout = '1s';
CALL backfill_notes();
COMMIT;
