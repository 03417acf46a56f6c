TRUNCATE invoice_exports;
