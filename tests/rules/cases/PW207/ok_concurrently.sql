DROP INDEX CONCURRENTLY invoices_old_idx;
