-- Two statements in a file the runner wraps in one transaction.
SET lock_timeout = '1s';
DROP INDEX CONCURRENTLY invoices_old_idx;
