DELETE FROM invoice_exports;
