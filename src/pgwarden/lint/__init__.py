"""Lint a plan: run every rule over every step, honour suppressions."""
