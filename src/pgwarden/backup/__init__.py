"""Backups proven by restoring them, and restores that cannot pick the wrong one.

Public entry points live in `pgwarden.backup.api`; see docs/backup.md.
"""
