SET session_replication_role = origin;
