-- a mixed-case column is named as SQL writes it, quoted like its table
ALTER TABLE "EventType" DROP COLUMN "scAddress";
