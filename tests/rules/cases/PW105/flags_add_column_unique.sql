-- squawk #649 calls this a false positive, but the index still covers every existing row.
ALTER TABLE invoices ADD COLUMN external_id bigint UNIQUE;
