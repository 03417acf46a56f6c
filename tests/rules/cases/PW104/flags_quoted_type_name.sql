-- Prisma's enum change: the type name is quoted and mixed case, and the message says it so.
ALTER TABLE invoices ALTER COLUMN status TYPE "InvoiceStatus_new" USING (status::text::"InvoiceStatus_new");
