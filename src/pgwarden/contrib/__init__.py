"""Integrations with other tools (Django, Alembic); each imports its tool lazily."""
