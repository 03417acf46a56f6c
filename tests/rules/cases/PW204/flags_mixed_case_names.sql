-- the new mixed-case name is quoted like the old one
ALTER TABLE "VerificationRequest" RENAME TO "VerificationToken";
