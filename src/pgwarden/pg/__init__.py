"""PostgreSQL plumbing: binaries, throwaway clusters, connections, statistics."""
