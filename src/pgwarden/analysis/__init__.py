"""Parsing, the lock model and table context."""
