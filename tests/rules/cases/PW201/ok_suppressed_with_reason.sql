DROP TABLE legacy_invoices;  -- pgwarden: ignore PW201 unused since release 41, backup verified
