"""Guarded execution of a plan: apply, resume, status, cancel, backfill (see `api`)."""
