"""Plan sources: SQL files (Alembic and Django later)."""
