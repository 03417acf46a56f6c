"""Tests of the Alembic and Django integrations."""
