-- A cleanup of expired rows: an expiry column holds instants to come, so "< now()"
-- selects the ones that have passed, not nearly every row. How many is unknown here.
DELETE FROM refresh_tokens WHERE expires_at < now();
DELETE FROM invitations WHERE "validUntil" <= CURRENT_TIMESTAMP;
DELETE FROM jobs WHERE scheduled_for < now();
