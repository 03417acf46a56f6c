-- mixed-case column names, old and new, are named as SQL writes them
ALTER TABLE "User" RENAME COLUMN "emailVerified" TO "EmailVerified";
