-- NOT VALID + VALIDATE does not help for a domain: VALIDATE takes SHARE too.
ALTER DOMAIN amount ADD CONSTRAINT amount_positive CHECK (VALUE > 0) NOT VALID;
ALTER DOMAIN amount VALIDATE CONSTRAINT amount_positive;
