CLUSTER invoices USING invoices_pkey;
