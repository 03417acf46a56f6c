"""env.py of the sample project: the standard template plus pgwarden's hook.

`PGWARDEN_GUARDED=1` routes online upgrades through pgwarden's guarded executor
(`pgwarden.contrib.alembic.configure`); without it this is Alembic's stock env.py.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine

config = context.config
url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
    "sqlalchemy.url"
)
per_migration = os.environ.get("SAMPLE_TRANSACTION_PER_MIGRATION", "1") == "1"

if os.environ.get("PGWARDEN_GUARDED") == "1":
    from pgwarden.contrib.alembic import configure

    configure(
        context,
        url=url,
        environment=os.environ.get("PGWARDEN_ENV", "dev"),
        transaction_per_migration=per_migration,
    )
elif context.is_offline_mode():
    context.configure(
        url=url,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        transaction_per_migration=per_migration,
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    assert url is not None
    engine = create_engine(url)
    with engine.connect() as connection:
        context.configure(connection=connection, transaction_per_migration=per_migration)
        with context.begin_transaction():
            context.run_migrations()
