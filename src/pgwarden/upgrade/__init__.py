"""Major-version upgrades: check, rehearse, and a blue/green run through logical replication."""
