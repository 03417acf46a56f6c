-- Prisma's switch from a serial id: the dropped sequence is not a table traffic waits
-- for; the ACCESS EXCLUSIVE on "Document" is.
ALTER TABLE "Document" ALTER COLUMN "id" DROP DEFAULT;
DROP SEQUENCE "Document_id_seq";
ALTER TABLE "Field" ALTER COLUMN "documentId" SET DATA TYPE bigint;
