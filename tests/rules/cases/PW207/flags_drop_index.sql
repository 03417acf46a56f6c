DROP INDEX invoices_old_idx;
